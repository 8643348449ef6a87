#include <tesseract/capi.h>

/* libgomp's setter: Tesseract's OpenMP loops run on the calling thread's team size, which the
   OCR thread sets to one so that reading a still never takes a core from the encoders. */
void omp_set_num_threads(int);
