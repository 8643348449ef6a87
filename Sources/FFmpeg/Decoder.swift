internal import CFFmpeg

/// Decodes one stream of a Demuxer with the send/receive API.
/// Not Sendable: a codec context is confined to one thread.
public final class Decoder {
    var context: UnsafeMutablePointer<AVCodecContext>?
    public let streamIndex: Int
    public let timeBase: Rational

    /// - Parameters:
    ///   - threads: decoder threads; 0 lets FFmpeg choose.
    ///   - maxPixels: refuse pictures larger than this many pixels (AVCodecContext.max_pixels).
    public init(demuxer: Demuxer, streamIndex: Int, threads: Int = 0, maxPixels: Int? = nil) throws {
        self.streamIndex = streamIndex
        let st = try demuxer.stream(streamIndex, "opening decoder")
        let par = st.pointee.codecpar!
        timeBase = Rational(st.pointee.time_base)
        guard let codec = avcodec_find_decoder(par.pointee.codec_id) else {
            let name = avcodec_get_name(par.pointee.codec_id).map { String(cString: $0) } ?? "unknown"
            throw MediaError(kind: .unsupported, operation: "opening decoder", message: "no decoder for codec \(name)")
        }
        guard let ctx = avcodec_alloc_context3(codec) else { fatalError("avcodec_alloc_context3: out of memory") }
        context = ctx
        try check(avcodec_parameters_to_context(ctx, par), "opening decoder")
        ctx.pointee.pkt_timebase = st.pointee.time_base
        ctx.pointee.thread_count = Int32(threads)
        if let maxPixels { ctx.pointee.max_pixels = Int64(maxPixels) }
        try check(avcodec_open2(ctx, codec, nil), "opening \(String(cString: codec.pointee.name)) decoder")
    }

    deinit { avcodec_free_context(&context) }

    public var codecName: String { String(cString: context!.pointee.codec.pointee.name) }

    /// Sends a packet, or nil to drain. Throws on invalid data; the decoder stays usable after that.
    public func send(_ packet: Packet?) throws {
        let rc = avcodec_send_packet(context, packet?.pointer)
        if rc == cp_averror_eof() { return }  // already drained
        // EAGAIN here means frames were left unreceived: a caller's mistake, kept as its own code.
        try check(rc, "decoding packet")
    }

    /// The next decoded frame, `.needsInput` when the decoder wants another packet, `.endOfStream`
    /// once drained.
    public func receive() throws -> Pull<Frame> {
        let frame = Frame(timeBase: timeBase)
        let result = try Pull(code: avcodec_receive_frame(context, frame.pointer), value: frame, operation: "decoding frame")
        if case .value = result {
            // The best-effort timestamp copes with missing and reordered pts; make it the frame's pts.
            frame.pointer.pointee.pts = frame.pointer.pointee.best_effort_timestamp
        }
        return result
    }
}
