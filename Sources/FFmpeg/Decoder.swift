import CFFmpeg

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
        let st = demuxer.context!.pointee.streams[streamIndex]!
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
        if rc == cp_averror_eagain() {
            throw MediaError(kind: .other, operation: "decoding", message: "decoder full: receive frames before sending more")
        }
        try check(rc, "decoding packet")
    }

    /// The next decoded frame, or nil when the decoder needs another packet or is drained.
    public func receive() throws -> Frame? {
        let frame = Frame(timeBase: timeBase)
        let rc = avcodec_receive_frame(context, frame.pointer)
        if rc == cp_averror_eagain() || rc == cp_averror_eof() { return nil }
        try check(rc, "decoding frame")
        // The best-effort timestamp copes with missing and reordered pts; make it the frame's pts.
        frame.pointer.pointee.pts = frame.pointer.pointee.best_effort_timestamp
        return frame
    }
}
