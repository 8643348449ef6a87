#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <stdio.h>
#include "clinux.h"

int cp_rename_exchange(const char *a, const char *b) {
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
}

int cp_rename_noreplace(const char *from, const char *to) {
    return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
}


static atomic_int signal_seen = 0;

static void on_signal(int sig) { atomic_store(&signal_seen, sig); }

void cp_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    // A parent may have started us with these signals blocked; the mask is inherited across exec.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int cp_signal_received(void) { return atomic_load(&signal_seen); }

int cp_die_with_parent(int parent_pid) {
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) return 0;
    return getppid() == parent_pid;
}

int cp_malloc_tune(void) {
    int arenas = mallopt(M_ARENA_MAX, 2);
    int threshold = mallopt(M_MMAP_THRESHOLD, 1 << 20);
    return arenas && threshold;
}
