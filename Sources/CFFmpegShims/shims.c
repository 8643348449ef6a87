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

// MARK: - Where two pictures differ

// First index in [from, to) where rows p and q differ, or `to`. memcmp over the whole span first:
// most rows of a still stretch are equal there, and glibc's memcmp runs at memory speed.
static int first_difference(const uint8_t *p, const uint8_t *q, int from, int to) {
    if (from >= to || memcmp(p + from, q + from, (size_t)(to - from)) == 0) return to;
    int i = from;
    while (to - i >= 64 && memcmp(p + i, q + i, 64) == 0) i += 64;
    while (i < to && p[i] == q[i]) i++;
    return i;
}

// Last index in [from, to) where rows p and q differ, plus one; `from` when none does.
static int last_difference(const uint8_t *p, const uint8_t *q, int from, int to) {
    if (from >= to || memcmp(p + from, q + from, (size_t)(to - from)) == 0) return from;
    int i = to;
    while (i - from >= 64 && memcmp(p + i - 64, q + i - 64, 64) == 0) i -= 64;
    while (i > from && p[i - 1] == q[i - 1]) i--;
    return i;
}

// The box of differing bytes of one plane of w x h bytes; 0 when none differ.
static int plane_box(const uint8_t *a, ptrdiff_t as, const uint8_t *b, ptrdiff_t bs, int w, int h, int box[4]) {
    if (a == b && as == bs) return 0;
    int top = 0;
    while (top < h && memcmp(a + top * as, b + top * bs, (size_t)w) == 0) top++;
    if (top == h) return 0;
    int bottom = h;
    while (bottom > top + 1 && memcmp(a + (bottom - 1) * as, b + (bottom - 1) * bs, (size_t)w) == 0) bottom--;
    // Columns: each row of the band need only be searched left of the box found so far and right of it.
    int left = w, right = 0;
    for (int r = top; r < bottom; r++) {
        const uint8_t *p = a + r * as, *q = b + r * bs;
        int l = first_difference(p, q, 0, left);
        if (l < left) left = l;
        int from = right > left ? right : left;
        int e = last_difference(p, q, from, w);
        if (e > right) right = e;
    }
    box[0] = left;
    box[1] = top;
    box[2] = right;
    box[3] = bottom;
    return 1;
}

int cp_frame_changed_box(const AVFrame *a, const AVFrame *b, int box[4]) {
    if (a->width != b->width || a->height != b->height || a->format != b->format) return -1;
    if (a->format != AV_PIX_FMT_YUV420P && a->format != AV_PIX_FMT_YUVJ420P) return -1;
    int w = a->width, h = a->height;
    if (w <= 0 || h <= 0 || (w & 1) || (h & 1)) return -1;
    for (int i = 0; i < 3; i++) {
        if (!a->data[i] || !b->data[i] || a->linesize[i] <= 0 || b->linesize[i] <= 0) return -1;
    }
    int any = 0;
    int out[4] = { w, h, 0, 0 };
    for (int i = 0; i < 3; i++) {
        int k = i == 0 ? 1 : 2;
        int pb[4];
        if (!plane_box(a->data[i], a->linesize[i], b->data[i], b->linesize[i], w / k, h / k, pb)) continue;
        any = 1;
        for (int j = 0; j < 4; j++) pb[j] *= k;
        if (pb[0] < out[0]) out[0] = pb[0];
        if (pb[1] < out[1]) out[1] = pb[1];
        if (pb[2] > out[2]) out[2] = pb[2];
        if (pb[3] > out[3]) out[3] = pb[3];
    }
    if (!any) return 0;
    box[0] = out[0] & ~1;
    box[1] = out[1] & ~1;
    box[2] = (out[2] + 1) & ~1;
    box[3] = (out[3] + 1) & ~1;
    return 1;
}

int cp_frame_copy_outside(AVFrame *dst, const AVFrame *src, int x0, int y0, int x1, int y1) {
    if (dst->width != src->width || dst->height != src->height || dst->format != src->format) return -1;
    if (src->format != AV_PIX_FMT_YUV420P && src->format != AV_PIX_FMT_YUVJ420P) return -1;
    int w = src->width, h = src->height;
    if ((w & 1) || (h & 1) || (x0 & 1) || (y0 & 1) || (x1 & 1) || (y1 & 1)) return -1;
    if (x0 < 0 || y0 < 0 || x1 > w || y1 > h || x0 > x1 || y0 > y1) return -1;
    for (int i = 0; i < 3; i++) {
        int k = i == 0 ? 1 : 2;
        int pw = w / k, ph = h / k, l = x0 / k, t = y0 / k, r = x1 / k, b = y1 / k;
        for (int y = 0; y < ph; y++) {
            uint8_t *d = dst->data[i] + (ptrdiff_t)y * dst->linesize[i];
            const uint8_t *s = src->data[i] + (ptrdiff_t)y * src->linesize[i];
            if (y < t || y >= b) {
                memcpy(d, s, (size_t)pw);
            } else {
                memcpy(d, s, (size_t)l);
                memcpy(d + r, s + r, (size_t)(pw - r));
            }
        }
    }
    return 0;
}

// MARK: - Pooled picture buffers

struct cp_picture_pool {
    AVBufferPool *buffers;
    int width, height, format;
    int linesize[4];
    ptrdiff_t offset[4];
    int planes;
};

cp_picture_pool *cp_picture_pool_new(const AVFrame *layout) {
    if (!layout->buf[0] || layout->buf[1] || !layout->data[0]) return NULL;
    cp_picture_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->width = layout->width;
    p->height = layout->height;
    p->format = layout->format;
    for (int i = 0; i < 4 && layout->data[i]; i++) {
        p->linesize[i] = layout->linesize[i];
        p->offset[i] = layout->data[i] - layout->buf[0]->data;
        p->planes = i + 1;
    }
    p->buffers = av_buffer_pool_init(layout->buf[0]->size, NULL);
    if (!p->buffers) {
        free(p);
        return NULL;
    }
    return p;
}

void cp_picture_pool_free(cp_picture_pool *pool) {
    if (!pool) return;
    av_buffer_pool_uninit(&pool->buffers);
    free(pool);
}

int cp_picture_pool_get(cp_picture_pool *pool, AVFrame *frame) {
    if (frame->width != pool->width || frame->height != pool->height || frame->format != pool->format || frame->buf[0])
        return AVERROR(EINVAL);
    AVBufferRef *buf = av_buffer_pool_get(pool->buffers);
    if (!buf) return AVERROR(ENOMEM);
    frame->buf[0] = buf;
    for (int i = 0; i < pool->planes; i++) {
        frame->data[i] = buf->data + pool->offset[i];
        frame->linesize[i] = pool->linesize[i];
    }
    frame->extended_data = frame->data;
    return 0;
}
