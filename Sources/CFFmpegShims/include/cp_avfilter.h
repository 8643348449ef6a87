// libavfilter, loaded on first use. Only the rare source that needs deinterlacing or rotating uses a
// filter graph, and linking the library loads it and its own dependencies (speech synthesis voices,
// Vulkan, libplacebo, ...) into every process: 11 MB of resident memory from the start
// (BENCHMARKS.md, "libavfilter loaded when a source needs it"). The headers still give the types.
#ifndef COURSEPACK_AVFILTER_H
#define COURSEPACK_AVFILTER_H

#include <libavfilter/avfilter.h>
#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>

// Loads libavfilter of the headers' major version once per process (safe from any thread): 1 when
// it and every call below are there, else 0 and cp_avfilter_error says why.
int cp_avfilter_load(void);
const char *cp_avfilter_error(void);

// libavfilter's calls of the same names without the cp_ prefix; only after cp_avfilter_load gave 1.
AVFilterGraph *cp_avfilter_graph_alloc(void);
void cp_avfilter_graph_free(AVFilterGraph **graph);
const AVFilter *cp_avfilter_get_by_name(const char *name);
int cp_avfilter_graph_create_filter(AVFilterContext **filt_ctx, const AVFilter *filt, const char *name,
                                    const char *args, void *opaque, AVFilterGraph *graph_ctx);
AVFilterInOut *cp_avfilter_inout_alloc(void);
void cp_avfilter_inout_free(AVFilterInOut **inout);
int cp_avfilter_graph_parse_ptr(AVFilterGraph *graph, const char *filters, AVFilterInOut **inputs,
                                AVFilterInOut **outputs, void *log_ctx);
int cp_avfilter_graph_config(AVFilterGraph *graphctx, void *log_ctx);
AVRational cp_av_buffersink_get_time_base(const AVFilterContext *ctx);
int cp_av_buffersrc_add_frame_flags(AVFilterContext *buffer_src, AVFrame *frame, int flags);
int cp_av_buffersink_get_frame(AVFilterContext *ctx, AVFrame *frame);

#endif
