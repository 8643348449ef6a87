#include "cp_avfilter.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define CP_STR2(x) #x
#define CP_STR(x) CP_STR2(x)

// The calls the wrappers below forward to, set once by load(); each typed as libavfilter's header
// declares it, so a table entry cannot disagree with the function it holds.
static struct {
    __typeof__(&avfilter_graph_alloc) graph_alloc;
    __typeof__(&avfilter_graph_free) graph_free;
    __typeof__(&avfilter_get_by_name) get_by_name;
    __typeof__(&avfilter_graph_create_filter) graph_create_filter;
    __typeof__(&avfilter_inout_alloc) inout_alloc;
    __typeof__(&avfilter_inout_free) inout_free;
    __typeof__(&avfilter_graph_parse_ptr) graph_parse_ptr;
    __typeof__(&avfilter_graph_config) graph_config;
    __typeof__(&av_buffersink_get_time_base) buffersink_get_time_base;
    __typeof__(&av_buffersrc_add_frame_flags) buffersrc_add_frame_flags;
    __typeof__(&av_buffersink_get_frame) buffersink_get_frame;
    __typeof__(&avfilter_version) version;
} api;
static int loaded;
static char load_error[512];
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    const char *name = "libavfilter.so." CP_STR(LIBAVFILTER_VERSION_MAJOR);
    void *lib = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(load_error, sizeof load_error, "cannot load %s: %s", name, why ? why : "no reason given");
        return;
    }
#define CP_LOAD(field, symbol)                                                      \
    if (!(*(void **)&api.field = dlsym(lib, #symbol))) {                            \
        snprintf(load_error, sizeof load_error, "%s has no %s", name, #symbol);     \
        dlclose(lib);                                                               \
        return;                                                                     \
    }
    CP_LOAD(version, avfilter_version)
    if (api.version() >> 16 != LIBAVFILTER_VERSION_MAJOR) {
        snprintf(load_error, sizeof load_error, "%s is not libavfilter %d", name, LIBAVFILTER_VERSION_MAJOR);
        dlclose(lib);
        return;
    }
    CP_LOAD(graph_alloc, avfilter_graph_alloc)
    CP_LOAD(graph_free, avfilter_graph_free)
    CP_LOAD(get_by_name, avfilter_get_by_name)
    CP_LOAD(graph_create_filter, avfilter_graph_create_filter)
    CP_LOAD(inout_alloc, avfilter_inout_alloc)
    CP_LOAD(inout_free, avfilter_inout_free)
    CP_LOAD(graph_parse_ptr, avfilter_graph_parse_ptr)
    CP_LOAD(graph_config, avfilter_graph_config)
    CP_LOAD(buffersink_get_time_base, av_buffersink_get_time_base)
    CP_LOAD(buffersrc_add_frame_flags, av_buffersrc_add_frame_flags)
    CP_LOAD(buffersink_get_frame, av_buffersink_get_frame)
#undef CP_LOAD
    loaded = 1;
}

int cp_avfilter_load(void) {
    pthread_once(&once, load);
    return loaded;
}

const char *cp_avfilter_error(void) {
    pthread_once(&once, load);
    return load_error;
}

AVFilterGraph *cp_avfilter_graph_alloc(void) { return api.graph_alloc(); }
void cp_avfilter_graph_free(AVFilterGraph **graph) {
    if (loaded) api.graph_free(graph);
}
const AVFilter *cp_avfilter_get_by_name(const char *name) { return api.get_by_name(name); }
int cp_avfilter_graph_create_filter(AVFilterContext **filt_ctx, const AVFilter *filt, const char *name,
                                    const char *args, void *opaque, AVFilterGraph *graph_ctx) {
    return api.graph_create_filter(filt_ctx, filt, name, args, opaque, graph_ctx);
}
AVFilterInOut *cp_avfilter_inout_alloc(void) { return api.inout_alloc(); }
void cp_avfilter_inout_free(AVFilterInOut **inout) { api.inout_free(inout); }
int cp_avfilter_graph_parse_ptr(AVFilterGraph *graph, const char *filters, AVFilterInOut **inputs,
                                AVFilterInOut **outputs, void *log_ctx) {
    return api.graph_parse_ptr(graph, filters, inputs, outputs, log_ctx);
}
int cp_avfilter_graph_config(AVFilterGraph *graphctx, void *log_ctx) { return api.graph_config(graphctx, log_ctx); }
AVRational cp_av_buffersink_get_time_base(const AVFilterContext *ctx) { return api.buffersink_get_time_base(ctx); }
int cp_av_buffersrc_add_frame_flags(AVFilterContext *buffer_src, AVFrame *frame, int flags) {
    return api.buffersrc_add_frame_flags(buffer_src, frame, flags);
}
int cp_av_buffersink_get_frame(AVFilterContext *ctx, AVFrame *frame) { return api.buffersink_get_frame(ctx, frame); }
