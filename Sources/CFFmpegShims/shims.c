#include "cp_shims.h"
#include "clinux.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/log.h>
#include <libavutil/time.h>

static _Atomic(cp_log_sink) log_sink = NULL;
static atomic_int log_max_level = AV_LOG_WARNING;

// The last error-level message logged on this thread, so a failed call can report FFmpeg's own words.
static _Thread_local char last_error[512];

// The last encoder option an encoder's own option parser refused on this thread: libx264 in this
// FFmpeg (5.1) only warns "Error parsing option 'KEY = VALUE'." and opens without it.
static _Thread_local char rejected_option[256];

static void log_trampoline(void *avcl, int level, const char *fmt, va_list vl) {
    if (level <= AV_LOG_WARNING && fmt && strncmp(fmt, "Error parsing option", 20) == 0) {
        va_list copy;
        va_copy(copy, vl);
        vsnprintf(rejected_option, sizeof rejected_option, fmt, copy);
        va_end(copy);
        size_t r = strlen(rejected_option);
        while (r > 0 && (rejected_option[r - 1] == '\n' || rejected_option[r - 1] == ' ')) rejected_option[--r] = 0;
    }
    // Filter by level before any formatting work.
    cp_log_sink sink = atomic_load(&log_sink);
    int wanted = sink && level <= atomic_load(&log_max_level);
    if (!wanted && level > AV_LOG_ERROR) return;
    char line[1024];
    int print_prefix = 0;
    av_log_format_line2(avcl, level, fmt, vl, line, sizeof line, &print_prefix);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = 0;
    if (n == 0) return;
    if (level <= AV_LOG_ERROR) snprintf(last_error, sizeof last_error, "%s", line);
    if (wanted) sink(level, line);
}

const char *cp_last_error(void) { return last_error; }
const char *cp_rejected_option(void) { return rejected_option; }
void cp_clear_rejected_option(void) { rejected_option[0] = 0; }
void cp_clear_last_error(void) { last_error[0] = 0; }

void cp_log_install(int max_level, cp_log_sink sink) {
    atomic_store(&log_max_level, max_level);
    atomic_store(&log_sink, sink);
    // Errors are always formatted (for cp_last_error); the sink gets what max_level lets through.
    av_log_set_level(max_level > AV_LOG_ERROR ? max_level : AV_LOG_ERROR);
    av_log_set_callback(log_trampoline);
}

struct cp_interrupt {
    atomic_int cancelled;
    int64_t deadline_us;
    atomic_int reason;
};

int64_t cp_now_us(void) { return av_gettime_relative(); }

cp_interrupt *cp_interrupt_new(int64_t deadline_us) {
    cp_interrupt *s = calloc(1, sizeof *s);
    if (s) s->deadline_us = deadline_us;
    return s;
}

void cp_interrupt_free(cp_interrupt *state) { free(state); }

void cp_interrupt_cancel(cp_interrupt *state) { atomic_store(&state->cancelled, 1); }

static int interrupt_trampoline(void *opaque) {
    cp_interrupt *s = opaque;
    if (atomic_load(&s->cancelled)) { atomic_store(&s->reason, 1); return 1; }
    if (cp_signal_received()) { atomic_store(&s->reason, 3); return 1; }
    if (s->deadline_us > 0 && av_gettime_relative() > s->deadline_us) { atomic_store(&s->reason, 2); return 1; }
    return 0;
}

int cp_interrupt_reason(const cp_interrupt *state) {
    if (atomic_load(&((cp_interrupt *)state)->reason)) return atomic_load(&((cp_interrupt *)state)->reason);
    if (atomic_load(&((cp_interrupt *)state)->cancelled)) return 1;
    if (cp_signal_received()) return 3;
    if (state->deadline_us > 0 && av_gettime_relative() > state->deadline_us) return 2;
    return 0;
}

void cp_interrupt_attach(AVFormatContext *ctx, cp_interrupt *state) {
    ctx->interrupt_callback.callback = interrupt_trampoline;
    ctx->interrupt_callback.opaque = state;
}
