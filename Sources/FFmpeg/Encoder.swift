internal import CFFmpeg
internal import CFFmpegShims
import Foundation

/// Settings for a video encoder.
public struct VideoEncoderConfig: Sendable {
    public var codec = "libx264"
    public var width: Int
    public var height: Int
    public var timeBase: Rational
    /// Nominal frame rate, for rate control and the container.
    public var frameRate: Rational
    public var pixelFormat = PixelFormat.yuv420p
    /// Maximum distance between keyframes, in frames.
    public var gopSize: Int
    public var maxRate: Int?
    public var bufferSize: Int?
    /// Encoder threads; 0 lets the encoder choose.
    public var threads = 0
    /// Codec and private options (e.g. "preset", "crf", "x264-params").
    public var options: [String: String] = [:]
    /// Put parameter sets in extradata (needed by MP4 and HLS fMP4).
    public var globalHeader = true
    /// Fixed quantiser scale (1 best to 31 worst) instead of rate control, for still images.
    public var qscale: Int?

    public init(width: Int, height: Int, timeBase: Rational, frameRate: Rational, gopSize: Int) {
        self.width = width
        self.height = height
        self.timeBase = timeBase
        self.frameRate = frameRate
        self.gopSize = gopSize
    }
}

/// Settings for an audio encoder.
public struct AudioEncoderConfig: Sendable {
    public var codec = "aac"
    public var sampleRate: Int
    public var channels: Int
    public var bitRate: Int
    public var options: [String: String] = [:]
    public var globalHeader = true

    public init(sampleRate: Int, channels: Int, bitRate: Int) {
        self.sampleRate = sampleRate
        self.channels = channels
        self.bitRate = bitRate
    }
}

extension Encoder {
    /// Encodes one picture as a JPEG file's bytes (libavcodec's mjpeg encoder, full-range 4:2:0).
    /// `picture` must be yuvj420p or yuv420p at the size wanted.
    public static func jpeg(_ picture: Frame, qscale: Int = 3) throws -> [UInt8] {
        var config = VideoEncoderConfig(width: picture.width, height: picture.height, timeBase: Rational(1, 25),
                                        frameRate: Rational(25, 1), gopSize: 1)
        config.codec = "mjpeg"
        config.pixelFormat = picture.pixelFormat
        config.globalHeader = false
        config.qscale = qscale
        config.threads = 1
        if picture.pixelFormat == .yuv420p { config.options = ["strict": "unofficial"] }
        return try image(picture, config: config)
    }

    /// Encodes one picture as a lossy WebP file's bytes (libwebp). `picture` must be yuv420p at the size
    /// wanted; `quality` is libwebp's 0 (smallest) to 100 (best).
    public static func webp(_ picture: Frame, quality: Int) throws -> [UInt8] {
        var config = VideoEncoderConfig(width: picture.width, height: picture.height, timeBase: Rational(1, 25),
                                        frameRate: Rational(25, 1), gopSize: 1)
        config.codec = "libwebp"
        config.pixelFormat = picture.pixelFormat
        config.globalHeader = false
        config.threads = 1
        config.options = ["quality": String(quality)]
        return try image(picture, config: config)
    }

    private static func image(_ picture: Frame, config: VideoEncoderConfig) throws -> [UInt8] {
        let encoder = try Encoder(video: config)
        let f = picture.reference()
        f.pts = 0
        f.clearPictureType()
        try encoder.send(f)
        try encoder.send(nil)
        var data = [UInt8]()
        while case let .value(p) = try encoder.receive() { data += p.bytes }
        guard !data.isEmpty else { throw MediaError(kind: .other, operation: "encoding a \(config.codec) picture", message: "encoder produced no data") }
        return data
    }
}

/// An encoder with the send/receive API.
/// Not Sendable: a codec context is confined to one thread.
public final class Encoder {
    var context: UnsafeMutablePointer<AVCodecContext>?
    public let timeBase: Rational

    public convenience init(video config: VideoEncoderConfig) throws {
        try self.init(codecName: config.codec, options: config.options, globalHeader: config.globalHeader) { ctx in
            ctx.pointee.width = Int32(config.width)
            ctx.pointee.height = Int32(config.height)
            ctx.pointee.time_base = config.timeBase.av
            ctx.pointee.framerate = config.frameRate.av
            ctx.pointee.pix_fmt = config.pixelFormat.av
            ctx.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
            ctx.pointee.gop_size = Int32(config.gopSize)
            ctx.pointee.thread_count = Int32(config.threads)
            if let m = config.maxRate { ctx.pointee.rc_max_rate = Int64(m) }
            if let b = config.bufferSize { ctx.pointee.rc_buffer_size = Int32(b) }
            if let q = config.qscale {
                ctx.pointee.flags |= Int32(AV_CODEC_FLAG_QSCALE)
                ctx.pointee.global_quality = Int32(q) * FF_QP2LAMBDA
            }
            return config.timeBase
        }
    }

    public convenience init(audio config: AudioEncoderConfig) throws {
        try self.init(codecName: config.codec, options: config.options, globalHeader: config.globalHeader) { ctx in
            ctx.pointee.sample_rate = Int32(config.sampleRate)
            cp_layout_default(&ctx.pointee.ch_layout, Int32(config.channels))
            ctx.pointee.bit_rate = Int64(config.bitRate)
            ctx.pointee.sample_fmt = ctx.pointee.codec.pointee.sample_fmts?.pointee ?? AV_SAMPLE_FMT_FLTP
            ctx.pointee.time_base = AVRational(num: 1, den: Int32(config.sampleRate))
            return Rational(1, Int32(config.sampleRate))
        }
    }

    private init(codecName: String, options: [String: String], globalHeader: Bool,
                 configure: (UnsafeMutablePointer<AVCodecContext>) -> Rational) throws {
        guard let codec = avcodec_find_encoder_by_name(codecName) else {
            throw MediaError(kind: .unsupported, operation: "opening encoder", message: "encoder \(codecName) is not in this FFmpeg build")
        }
        guard let ctx = avcodec_alloc_context3(codec) else { fatalError("avcodec_alloc_context3: out of memory") }
        context = ctx
        ctx.pointee.codec = codec
        timeBase = configure(ctx)
        if globalHeader { ctx.pointee.flags |= Int32(AV_CODEC_FLAG_GLOBAL_HEADER) }
        var dict: OpaquePointer?
        defer { av_dict_free(&dict) }
        for (k, v) in options { av_dict_set(&dict, k, v, 0) }
        cp_clear_rejected_option()
        try check(avcodec_open2(ctx, codec, &dict), "opening \(codecName) encoder")
        // libx264 opens without an x264-params option it cannot parse, saying so in a warning only.
        if let refused = cp_rejected_option(), refused.pointee != 0 {
            throw MediaError(kind: .refusedOption, operation: "opening \(codecName) encoder", message: String(cString: refused))
        }
        if let left = av_dict_get(dict, "", nil, AV_DICT_IGNORE_SUFFIX) {
            throw MediaError(kind: .unsupported, operation: "opening \(codecName) encoder",
                             message: "unknown option \(String(cString: left.pointee.key))")
        }
    }

    deinit { avcodec_free_context(&context) }

    /// Frees the codec and what it holds (x264's lookahead and reference pictures) once the encoder
    /// has been flushed, before the object goes. Sending to or pulling from a closed encoder throws;
    /// its properties are not to be read after.
    public func close() { avcodec_free_context(&context) }

    private func checkOpen() throws {
        if context == nil { throw MediaError(kind: .other, operation: "encoding", message: "the encoder is closed") }
    }

    /// Samples per audio frame the encoder expects (1024 for AAC); 0 for video.
    public var frameSize: Int { Int(context!.pointee.frame_size) }
    /// Pictures the encoder may hold back for reordering (B-frames): its packets' decoding times run
    /// this many frame durations behind their presentation times.
    public var reorderFrames: Int { Int(context!.pointee.has_b_frames) }
    public var sampleRate: Int { Int(context!.pointee.sample_rate) }
    public var channels: Int { Int(context!.pointee.ch_layout.nb_channels) }
    /// Codec-specific data after opening: SPS/PPS for H.264, AudioSpecificConfig for AAC.
    public var extradata: [UInt8] {
        guard let p = context!.pointee.extradata, context!.pointee.extradata_size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: p, count: Int(context!.pointee.extradata_size)))
    }

    /// Sends a frame, or nil to flush. The frame's pts must be in the encoder's time base.
    public func send(_ frame: Frame?) throws {
        try checkOpen()
        let rc = avcodec_send_frame(context, frame?.pointer)
        if rc == cp_averror_eof() { return }
        try check(rc, "encoding")
    }

    /// The next packet, `.needsInput` when the encoder wants more frames, `.endOfStream` once flushed.
    public func receive() throws -> Pull<Packet> {
        try checkOpen()
        let packet = Packet(timeBase: timeBase)
        return try Pull(code: avcodec_receive_packet(context, packet.pointer), value: packet, operation: "encoding")
    }
}
