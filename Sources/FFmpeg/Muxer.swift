internal import CFFmpeg

/// An output file or set of files written by a libavformat muxer. Owns its AVFormatContext; closes
/// its own file (avio_closep) when the format has one, then frees the context.
/// Not Sendable: confined to the thread that writes it.
public final class Muxer {
    var context: UnsafeMutablePointer<AVFormatContext>?
    public let path: String
    private var streamTimeBases: [Rational] = []
    private var sourceTimeBases: [Rational] = []
    private var headerWritten = false
    private var finished = false

    /// - Parameter format: a muxer name ("hls", "mp4"); nil guesses from the path.
    public init(path: String, format: String? = nil) throws {
        self.path = path
        var ctx: UnsafeMutablePointer<AVFormatContext>?
        try check(avformat_alloc_output_context2(&ctx, nil, format, path), "creating \(format ?? "output") muxer for \(path)")
        context = ctx
    }

    deinit {
        if let ctx = context {
            if ctx.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0, ctx.pointee.pb != nil {
                avio_closep(&ctx.pointee.pb)
            }
            avformat_free_context(ctx)
        }
    }

    /// Adds a stream carrying `encoder`'s output; returns its index. Call before `writeHeader`.
    @discardableResult
    public func addStream(for encoder: Encoder) throws -> Int {
        guard !headerWritten else { throw MediaError.misuse("adding a stream to \(path)", "the header is already written") }
        guard let st = avformat_new_stream(context, nil) else {
            throw MediaError(kind: .other, operation: "adding stream to \(path)", message: "out of memory")
        }
        try check(avcodec_parameters_from_context(st.pointee.codecpar, encoder.context), "adding stream to \(path)")
        st.pointee.time_base = encoder.timeBase.av
        sourceTimeBases.append(encoder.timeBase)
        return Int(st.pointee.index)
    }

    /// Adds a stream that carries `demuxer`'s stream `index` unchanged (stream copy); returns its index.
    @discardableResult
    public func addStream(copying index: Int, of demuxer: Demuxer) throws -> Int {
        guard !headerWritten else { throw MediaError.misuse("adding a stream to \(path)", "the header is already written") }
        let input = try demuxer.stream(index, "copying a stream into \(path)")
        guard let st = avformat_new_stream(context, nil) else {
            throw MediaError(kind: .other, operation: "adding stream to \(path)", message: "out of memory")
        }
        try check(avcodec_parameters_copy(st.pointee.codecpar, input.pointee.codecpar), "adding stream to \(path)")
        st.pointee.codecpar.pointee.codec_tag = 0
        st.pointee.time_base = input.pointee.time_base
        return Int(st.pointee.index)
    }

    /// Opens the output and writes the header. Options are the muxer's (e.g. "hls_time"); an option
    /// the muxer does not know is an error.
    public func writeHeader(options: [String: String] = [:]) throws {
        guard !headerWritten else { throw MediaError.misuse("writing header of \(path)", "the header is already written") }
        let ctx = context!
        if ctx.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0 {
            try check(avio_open(&ctx.pointee.pb, path, AVIO_FLAG_WRITE), "opening \(path) for writing")
        }
        var dict: OpaquePointer?
        defer { av_dict_free(&dict) }
        for (k, v) in options { av_dict_set(&dict, k, v, 0) }
        try check(avformat_write_header(ctx, &dict), "writing header of \(path)")
        if let left = av_dict_get(dict, "", nil, AV_DICT_IGNORE_SUFFIX) {
            throw MediaError(kind: .unsupported, operation: "writing header of \(path)",
                             message: "unknown muxer option \(String(cString: left.pointee.key))")
        }
        headerWritten = true
        streamTimeBases = (0..<Int(ctx.pointee.nb_streams)).map { Rational(ctx.pointee.streams[$0]!.pointee.time_base) }
    }

    /// Writes a packet to stream `stream`, rescaling its timestamps from the packet's time base.
    /// Interleaved (the default), libavformat orders the streams' packets by decoding time; otherwise
    /// the caller's order is kept (each stream's own decoding times must still increase).
    public func write(_ packet: Packet, stream: Int, interleaved: Bool = true) throws {
        guard headerWritten, !finished else {
            throw MediaError.misuse("writing \(path)", finished ? "the output is finished" : "the header is not written yet")
        }
        guard streamTimeBases.indices.contains(stream) else {
            throw MediaError.misuse("writing \(path)", "no stream \(stream) (the output has \(streamTimeBases.count))")
        }
        packet.pointer.pointee.stream_index = Int32(stream)
        av_packet_rescale_ts(packet.pointer, packet.timeBase.av, streamTimeBases[stream].av)
        packet.timeBase = streamTimeBases[stream]
        if interleaved {
            try check(av_interleaved_write_frame(context, packet.pointer), "writing \(path)")
        } else {
            try check(av_write_frame(context, packet.pointer), "writing \(path)")
        }
    }

    /// Writes the trailer and closes the output.
    public func finish() throws {
        guard headerWritten, !finished else { return }
        finished = true
        try check(av_write_trailer(context), "finishing \(path)")
        let ctx = context!
        if ctx.pointee.oformat.pointee.flags & AVFMT_NOFILE == 0, ctx.pointee.pb != nil {
            try check(avio_closep(&ctx.pointee.pb), "closing \(path)")
        }
    }
}
