internal import CFFmpeg

/// A libavfilter graph with one video input and one video output, described in FFmpeg's filter
/// syntax (e.g. "bwdif,transpose=clock,format=yuv420p").
/// Not Sendable: a filter graph is confined to one thread.
public final class VideoFilter {
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private var source: UnsafeMutablePointer<AVFilterContext>?
    private var sink: UnsafeMutablePointer<AVFilterContext>?
    public let description: String

    /// Builds the graph for frames shaped like `first`, counted in `first.timeBase`.
    public init(_ description: String, input first: Frame, threads: Int = 1) throws {
        self.description = description
        guard let g = avfilter_graph_alloc() else { fatalError("avfilter_graph_alloc: out of memory") }
        graph = g
        g.pointee.nb_threads = Int32(threads)
        let f = first.pointer.pointee
        let sar = f.sample_aspect_ratio.num > 0 ? f.sample_aspect_ratio : AVRational(num: 1, den: 1)
        let args = "video_size=\(f.width)x\(f.height):pix_fmt=\(f.format):time_base=\(first.timeBase.num)/\(first.timeBase.den):pixel_aspect=\(sar.num)/\(sar.den)"
        try check(avfilter_graph_create_filter(&source, avfilter_get_by_name("buffer"), "in", args, nil, g), "creating filter input")
        try check(avfilter_graph_create_filter(&sink, avfilter_get_by_name("buffersink"), "out", nil, nil, g), "creating filter output")
        var outputs = avfilter_inout_alloc()
        var inputs = avfilter_inout_alloc()
        defer {
            avfilter_inout_free(&outputs)
            avfilter_inout_free(&inputs)
        }
        outputs!.pointee.name = av_strdup("in")
        outputs!.pointee.filter_ctx = source
        outputs!.pointee.pad_idx = 0
        outputs!.pointee.next = nil
        inputs!.pointee.name = av_strdup("out")
        inputs!.pointee.filter_ctx = sink
        inputs!.pointee.pad_idx = 0
        inputs!.pointee.next = nil
        try check(avfilter_graph_parse_ptr(g, description, &inputs, &outputs, nil), "parsing filter graph \"\(description)\"")
        try check(avfilter_graph_config(g, nil), "configuring filter graph \"\(description)\"")
    }

    deinit { avfilter_graph_free(&graph) }

    /// Time base of the frames that come out.
    public var outputTimeBase: Rational { Rational(av_buffersink_get_time_base(sink)) }

    /// Feeds a frame (its buffers are referenced, not copied), or nil at the end of the input.
    public func push(_ frame: Frame?) throws {
        if let frame {
            try check(av_buffersrc_add_frame_flags(source, frame.pointer, Int32(AV_BUFFERSRC_FLAG_KEEP_REF)), "filtering")
        } else {
            try check(av_buffersrc_add_frame_flags(source, nil, 0), "filtering")
        }
    }

    /// The next filtered frame, `.needsInput` when the graph wants more, `.endOfStream` once drained.
    public func pull() throws -> Pull<Frame> {
        let out = Frame(timeBase: outputTimeBase)
        return try Pull(code: av_buffersink_get_frame(sink, out.pointer), value: out, operation: "filtering")
    }
}
