// C code that must be compiled: callbacks FFmpeg calls with C calling conventions.
#ifndef COURSEPACK_SHIMS_H
#define COURSEPACK_SHIMS_H

#include <stdint.h>

// libavfilter, loaded on first use (declared in its own header; included here so that the module's
// one umbrella header names it and a build that has this module cached sees the change).
#include "cp_avfilter.h"

struct AVFormatContext;
struct AVFrame;

// Log sink: receives one formatted line per av_log call at or below the level set.
typedef void (*cp_log_sink)(int level, const char *line);
void cp_log_install(int max_level, cp_log_sink sink);
// The last error-level line FFmpeg logged on the calling thread ("" if none since the last clear).
const char *cp_last_error(void);
void cp_clear_last_error(void);
// The last encoder option an encoder refused on the calling thread with only a warning ("" if none
// since the last clear): "Error parsing option 'KEY = VALUE'."
const char *cp_rejected_option(void);
void cp_clear_rejected_option(void);

// Interrupt state for AVIOInterruptCB: cancelled by flag, by deadline, or by a process signal.
typedef struct cp_interrupt cp_interrupt;
cp_interrupt *cp_interrupt_new(int64_t deadline_us);   // 0 = no deadline; microseconds of av_gettime_relative
void cp_interrupt_free(cp_interrupt *state);
void cp_interrupt_cancel(cp_interrupt *state);
int cp_interrupt_reason(const cp_interrupt *state);    // 0 none, 1 cancelled, 2 deadline, 3 signal
void cp_interrupt_attach(struct AVFormatContext *ctx, cp_interrupt *state);
int64_t cp_now_us(void);

// Where picture `a` differs from picture `b`, both 8-bit Y'CbCr 4:2:0 (yuv420p or yuvj420p) of one even
// width and height: 0 when every visible byte of every plane is the same; 1 with box[0..3] = left, top,
// right, bottom (exclusive) of the smallest rectangle of luma pixels, on even coordinates, that holds
// every differing luma pixel and every luma pixel a differing chroma sample covers; -1 for any other
// pair of frames (the caller compares them another way).
int cp_frame_changed_box(const struct AVFrame *a, const struct AVFrame *b, int box[4]);

// Copies every visible byte of 4:2:0 picture `src` outside the rectangle of luma pixels [x0, x1) x
// [y0, y1) (even corners) into `dst`, a picture of the same size and format. -1 when they are not
// two such pictures.
// Picture buffers of one size and format from a pool, laid out as av_frame_get_buffer lays out
// `layout` (a picture of that size and format it allocated): the same strides and plane offsets, one
// buffer a picture. A picture given back (its last reference dropped) is reused by the next one, so a
// stream of pictures takes no new memory once the pool holds as many as are alive at once.
typedef struct cp_picture_pool cp_picture_pool;
cp_picture_pool *cp_picture_pool_new(const struct AVFrame *layout);
void cp_picture_pool_free(cp_picture_pool *pool);
// Gives `frame` (width, height and format set, no buffers) a buffer from the pool. 0 or an AVERROR.
int cp_picture_pool_get(cp_picture_pool *pool, struct AVFrame *frame);

int cp_frame_copy_outside(struct AVFrame *dst, const struct AVFrame *src, int x0, int y0, int x1, int y1);

#endif
