#include <tesseract/capi.h>

/* libgomp's setter of the largest number of nested active parallel regions. Tesseract's LSTM asks
   for teams of 4 threads (`num_threads(4)`, which omp_set_num_threads does not cap) around a few
   microseconds of work each, so threads are woken and put to sleep all the time: reading the bench
   lecture's 8 slides cost 3.3 s of system time. With 0 active levels every parallel region runs on
   the calling thread alone, as OMP_THREAD_LIMIT=1 would (which libgomp reads only at load). */
void omp_set_max_active_levels(int);
