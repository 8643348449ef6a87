internal import CFFmpeg
internal import CFFmpegShims

/// A libavfilter graph with one video input and one video output, described in FFmpeg's filter
/// syntax (e.g. "bwdif,transpose=clock,format=yuv420p").
/// libavfilter is loaded when the first graph is built (`cp_avfilter_load`), not linked: most sources
/// need no filter, and the library with its dependencies adds 11 MB to every process that loads it.
/// Not Sendable: a filter graph is confined to one thread.
public final class VideoFilter {
    private var graph: UnsafeMutablePointer<AVFilterGraph>?
    private var source: UnsafeMutablePointer<AVFilterContext>?
    private var sink: UnsafeMutablePointer<AVFilterContext>?
    public let description: String

    /// Builds the graph for frames shaped like `first`, counted in `first.timeBase`.
    public init(_ description: String, input first: Frame, threads: Int = 1) throws {
        self.description = description
        guard cp_avfilter_load() != 0 else {
            throw MediaError(kind: .unavailable, operation: "loading libavfilter", message: String(cString: cp_avfilter_error()))
        }
        guard let g = cp_avfilter_graph_alloc() else { fatalError("avfilter_graph_alloc: out of memory") }
        graph = g
        g.pointee.nb_threads = Int32(threads)
        let f = first.pointer.pointee
        let sar = f.sample_aspect_ratio.num > 0 ? f.sample_aspect_ratio : AVRational(num: 1, den: 1)
        let args = "video_size=\(f.width)x\(f.height):pix_fmt=\(f.format):time_base=\(first.timeBase.num)/\(first.timeBase.den):pixel_aspect=\(sar.num)/\(sar.den)"
        try check(cp_avfilter_graph_create_filter(&source, cp_avfilter_get_by_name("buffer"), "in", args, nil, g), "creating filter input")
        try check(cp_avfilter_graph_create_filter(&sink, cp_avfilter_get_by_name("buffersink"), "out", nil, nil, g), "creating filter output")
        var outputs = cp_avfilter_inout_alloc()
        var inputs = cp_avfilter_inout_alloc()
        defer {
            cp_avfilter_inout_free(&outputs)
            cp_avfilter_inout_free(&inputs)
        }
        outputs!.pointee.name = av_strdup("in")
        outputs!.pointee.filter_ctx = source
        outputs!.pointee.pad_idx = 0
        outputs!.pointee.next = nil
        inputs!.pointee.name = av_strdup("out")
        inputs!.pointee.filter_ctx = sink
        inputs!.pointee.pad_idx = 0
        inputs!.pointee.next = nil
        try check(cp_avfilter_graph_parse_ptr(g, description, &inputs, &outputs, nil), "parsing filter graph \"\(description)\"")
        try check(cp_avfilter_graph_config(g, nil), "configuring filter graph \"\(description)\"")
    }

    // A graph exists only once the library loaded (an init that failed to load it leaves none to free).
    deinit { if graph != nil { cp_avfilter_graph_free(&graph) } }

    /// Time base of the frames that come out.
    public var outputTimeBase: Rational { Rational(cp_av_buffersink_get_time_base(sink)) }

    /// Feeds a frame (its buffers are referenced, not copied), or nil at the end of the input.
    public func push(_ frame: Frame?) throws {
        if let frame {
            try check(cp_av_buffersrc_add_frame_flags(source, frame.pointer, Int32(AV_BUFFERSRC_FLAG_KEEP_REF)), "filtering")
        } else {
            try check(cp_av_buffersrc_add_frame_flags(source, nil, 0), "filtering")
        }
    }

    /// The next filtered frame, `.needsInput` when the graph wants more, `.endOfStream` once drained.
    public func pull() throws -> Pull<Frame> {
        let out = Frame(timeBase: outputTimeBase)
        return try Pull(code: cp_av_buffersink_get_frame(sink, out.pointer), value: out, operation: "filtering")
    }
}
