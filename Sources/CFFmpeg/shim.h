// The one place for what Swift cannot import from FFmpeg's headers.
// Function-like macros and compound literals do not cross into Swift, so each one used by the
// FFmpeg wrapper gets a static inline function here, with the reason beside it.
#ifndef COURSEPACK_CFFMPEG_SHIM_H
#define COURSEPACK_CFFMPEG_SHIM_H

#include <errno.h>
#include <string.h>
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libavutil/avutil.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/cpu.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libavutil/hmac.h>
#include <libavutil/sha.h>
#include <libavutil/time.h>
#include <libswscale/swscale.h>
#include <libswresample/swresample.h>

// AVERROR(e) is a function-like macro.
static inline int cp_averror(int e) { return AVERROR(e); }
// AVERROR_EOF and AVERROR_INVALIDDATA expand to FFERRTAG(...), a function-like macro.
static inline int cp_averror_eof(void) { return AVERROR_EOF; }
static inline int cp_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int cp_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int cp_averror_exit(void) { return AVERROR_EXIT; }
// AV_NOPTS_VALUE is a cast of a 64-bit literal that Swift does not import as a constant.
static inline int64_t cp_nopts(void) { return AV_NOPTS_VALUE; }
// AV_TIME_BASE_Q is a compound literal.
static inline AVRational cp_time_base_q(void) { return AV_TIME_BASE_Q; }
// AV_CHANNEL_LAYOUT_MONO / _STEREO are compound literals; av_channel_layout_default gives the same.
static inline void cp_layout_default(AVChannelLayout *layout, int channels) {
    av_channel_layout_default(layout, channels);
}
// The AVFrame side data holding a display matrix, for rotation; the enum is imported but the
// lookup is kept here beside the matrix helper so both change together across versions.
static inline double cp_stream_rotation(const AVStream *st) {
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, NULL);
    if (!m) return 0;
    return av_display_rotation_get((const int32_t *)m);
}
// Picture types are an enum whose raw values must not be hard-coded in Swift.
static inline void cp_frame_force_key(AVFrame *f) { f->pict_type = AV_PICTURE_TYPE_I; f->key_frame = 1; }
static inline void cp_frame_clear_pict_type(AVFrame *f) { f->pict_type = AV_PICTURE_TYPE_NONE; }
static inline int cp_packet_is_key(const AVPacket *p) { return (p->flags & AV_PKT_FLAG_KEY) != 0; }
static inline int cp_packet_is_corrupt(const AVPacket *p) { return (p->flags & AV_PKT_FLAG_CORRUPT) != 0; }
static inline int cp_disposition_default(const AVStream *st) { return (st->disposition & AV_DISPOSITION_DEFAULT) != 0; }
static inline int cp_disposition_attached_pic(const AVStream *st) { return (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0; }
static inline int cp_frame_interlaced(const AVFrame *f) { return f->interlaced_frame; }
// Flag macros: a frame the decoder concealed errors in, or marked corrupt.
static inline int cp_frame_damaged(const AVFrame *f) {
    return f->decode_error_flags != 0 || (f->flags & AV_FRAME_FLAG_CORRUPT) != 0;
}

// Whether two frames hold the same picture: the same size and format and every visible byte of
// every plane equal, compared row by row so that padding is ignored. AV_CEIL_RSHIFT and the
// AV_PIX_FMT_FLAG_* values are macros. Hardware, palette and bitstream formats never compare equal.
static inline int cp_frame_same_picture(const AVFrame *a, const AVFrame *b) {
    if (a->width != b->width || a->height != b->height || a->format != b->format) return 0;
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get((enum AVPixelFormat)a->format);
    if (!d || (d->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM))) return 0;
    int planes = av_pix_fmt_count_planes((enum AVPixelFormat)a->format);
    if (planes <= 0) return 0;
    for (int i = 0; i < planes; i++) {
        int bytes = av_image_get_linesize((enum AVPixelFormat)a->format, a->width, i);
        int rows = (i == 1 || i == 2) ? AV_CEIL_RSHIFT(a->height, d->log2_chroma_h) : a->height;
        if (bytes <= 0 || !a->data[i] || !b->data[i]) return 0;
        if (a->data[i] == b->data[i] && a->linesize[i] == b->linesize[i]) continue;
        for (int r = 0; r < rows; r++) {
            if (memcmp(a->data[i] + (ptrdiff_t)r * a->linesize[i], b->data[i] + (ptrdiff_t)r * b->linesize[i], (size_t)bytes) != 0) return 0;
        }
    }
    return 1;
}

#endif
