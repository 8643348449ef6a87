// zimg (libzimg-dev): resizing of 8-bit 4:2:0 pictures for the rung scalers.
// ZIMG_API_VERSION and ZIMG_BUFFER_MAX are macros Swift does not import, and the image buffers hold
// C arrays of structs, so the two calls the wrapper makes are static inline functions here.
#ifndef COURSEPACK_CZIMG_SHIM_H
#define COURSEPACK_CZIMG_SHIM_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zimg.h>

// A graph that resamples an 8-bit Y'CbCr 4:2:0 picture of sw x sh to dw x dh with a Lanczos filter of
// `taps` lobes on every plane, keeping range and chroma siting (no colour conversion, no dithering).
// `wide` lets zimg use 512-bit instructions where the CPU has them (ZIMG_CPU_AUTO_64B), which needs
// planes aligned to 64 bytes (cp_zimg_alignment). NULL when zimg refuses; zimg_get_last_error says why.
//
// With `tile` set, the graph makes only the dw x dh tile whose top-left corner is luma pixel (tx, ty) of
// a picture of pw x ph: zimg reads the whole source picture and filters the tile's own part of it, as
// the whole picture's graph does (the same taps, the same edges), so that tiles written into a copy of
// the picture scaled before give it byte for byte.
static inline zimg_filter_graph *cp_zimg_lanczos_420_tile(unsigned sw, unsigned sh, unsigned pw, unsigned ph,
                                                          int tile, unsigned tx, unsigned ty, unsigned dw, unsigned dh,
                                                          int full_range, int chroma_location, double taps, int wide) {
    zimg_image_format src, dst;
    zimg_image_format_default(&src, ZIMG_API_VERSION);
    src.width = sw;
    src.height = sh;
    src.pixel_type = ZIMG_PIXEL_BYTE;
    src.subsample_w = 1;
    src.subsample_h = 1;
    src.color_family = ZIMG_COLOR_YUV;
    src.depth = 8;
    src.pixel_range = full_range ? ZIMG_RANGE_FULL : ZIMG_RANGE_LIMITED;
    src.chroma_location = (zimg_chroma_location_e)chroma_location;
    dst = src;
    dst.width = dw;
    dst.height = dh;
    if (tile) {
        double x = (double)sw / pw, y = (double)sh / ph;
        src.active_region.left = tx * x;
        src.active_region.top = ty * y;
        src.active_region.width = dw * x;
        src.active_region.height = dh * y;
    }
    zimg_graph_builder_params params;
    zimg_graph_builder_params_default(&params, ZIMG_API_VERSION);
    params.resample_filter = ZIMG_RESIZE_LANCZOS;
    params.filter_param_a = taps;
    params.resample_filter_uv = ZIMG_RESIZE_LANCZOS;
    params.filter_param_a_uv = taps;
    params.dither_type = ZIMG_DITHER_NONE;
    params.cpu_type = wide ? ZIMG_CPU_AUTO_64B : ZIMG_CPU_AUTO;
    return zimg_filter_graph_build(&src, &dst, &params);
}

// The whole picture: sw x sh to dw x dh.
static inline zimg_filter_graph *cp_zimg_lanczos_420(unsigned sw, unsigned sh, unsigned dw, unsigned dh,
                                                     int full_range, int chroma_location, double taps, int wide) {
    return cp_zimg_lanczos_420_tile(sw, sh, dw, dh, 0, 0, 0, dw, dh, full_range, chroma_location, taps, wide);
}

// The alignment zimg needs of every plane's address and stride on x86-64: 32 bytes with
// ZIMG_CPU_AUTO, 64 with ZIMG_CPU_AUTO_64B.
static inline size_t cp_zimg_alignment(int wide) { return wide ? 64 : 32; }

// Runs `graph` on three whole planes. `tmp` must hold zimg_filter_graph_get_tmp_size bytes, aligned.
static inline zimg_error_code_e cp_zimg_process(const zimg_filter_graph *graph, void *tmp,
                                                const uint8_t *const src[3], const ptrdiff_t src_stride[3],
                                                uint8_t *const dst[3], const ptrdiff_t dst_stride[3]) {
    zimg_image_buffer_const in;
    zimg_image_buffer out;
    memset(&in, 0, sizeof in);
    memset(&out, 0, sizeof out);
    in.version = ZIMG_API_VERSION;
    out.version = ZIMG_API_VERSION;
    for (int p = 0; p < 3; p++) {
        in.plane[p].data = src[p];
        in.plane[p].stride = src_stride[p];
        in.plane[p].mask = ZIMG_BUFFER_MAX;
        out.plane[p].data = dst[p];
        out.plane[p].stride = dst_stride[p];
        out.plane[p].mask = ZIMG_BUFFER_MAX;
    }
    return zimg_filter_graph_process(graph, &in, &out, tmp, NULL, NULL, NULL, NULL);
}

#endif
