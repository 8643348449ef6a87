internal import CFFmpeg
internal import CFFmpegShims

/// What kind of data a stream carries.
public enum MediaKind: String, Sendable, Codable {
    case video, audio, subtitle, data, attachment, unknown
}

/// How a video stream's fields are ordered, as the container or codec declares it.
public enum FieldOrder: String, Sendable, Codable {
    case progressive, topFieldFirst = "tff", bottomFieldFirst = "bff", unknown
    public var isInterlaced: Bool { self == .topFieldFirst || self == .bottomFieldFirst }
}

/// Facts about one stream of an opened input.
public struct StreamInfo: Sendable {
    public var index: Int
    public var kind: MediaKind
    public var codecName: String
    public var profile: String?
    public var timeBase: Rational
    public var startTime: Double?
    public var duration: Double?
    public var bitRate: Int?
    public var isDefault: Bool
    public var isAttachedPicture: Bool
    public var language: String?
    public var title: String?
    // video
    public var width = 0
    public var height = 0
    public var pixelFormat: PixelFormat?
    public var sampleAspectRatio = Rational(0, 1)
    /// Clockwise rotation a player applies to show the picture upright: 0, 90, 180 or 270.
    public var rotation = 0
    public var averageFrameRate = Rational(0, 1)
    public var realFrameRate = Rational(0, 1)
    public var fieldOrder = FieldOrder.unknown
    // audio
    public var sampleRate = 0
    public var channels = 0
    public var channelLayout = ""
}

/// Limits and policy applied when opening an input.
public struct DemuxerOptions: Sendable {
    /// Demuxer names allowed (FFmpeg's short names); nil allows every demuxer. Checked by libavformat
    /// itself after probing, so a file is judged by its content, not its name.
    public var allowedFormats: [String]?
    /// Protocols allowed; "file" alone keeps reads on the local file system.
    public var allowedProtocols: [String] = ["file"]
    /// Bytes read while probing.
    public var probeSize: Int = 20_000_000
    /// Microseconds of media analysed to find stream parameters.
    public var analyzeDuration: Int = 10_000_000
    /// Seconds from opening after which every read is interrupted; nil for none.
    public var deadline: Double?

    public init() {}
}

/// An opened input file. Owns its AVFormatContext (freed with avformat_close_input).
/// Not Sendable: the demuxer is confined to the thread that reads it.
public final class Demuxer {
    var context: UnsafeMutablePointer<AVFormatContext>?
    private let interrupt: OpaquePointer
    public let path: String
    public private(set) var streams: [StreamInfo] = []

    public init(path: String, options: DemuxerOptions = DemuxerOptions()) throws {
        self.path = path
        let deadline: Int64 = options.deadline.map { cp_now_us() + Int64($0 * 1_000_000) } ?? 0
        guard let state = cp_interrupt_new(deadline) else { fatalError("out of memory") }
        interrupt = state
        guard let ctx = avformat_alloc_context() else { fatalError("avformat_alloc_context: out of memory") }
        cp_interrupt_attach(ctx, state)
        var dict: OpaquePointer?
        defer { av_dict_free(&dict) }
        av_dict_set(&dict, "protocol_whitelist", options.allowedProtocols.joined(separator: ","), 0)
        if let formats = options.allowedFormats {
            av_dict_set(&dict, "format_whitelist", formats.joined(separator: ","), 0)
        }
        av_dict_set(&dict, "probesize", String(options.probeSize), 0)
        av_dict_set(&dict, "analyzeduration", String(options.analyzeDuration), 0)
        var ctxOpt: UnsafeMutablePointer<AVFormatContext>? = ctx
        cp_clear_last_error()
        let rc = avformat_open_input(&ctxOpt, path, nil, &dict)
        // Every stored property is set by now, so a throw below runs deinit, which frees the interrupt
        // state and closes `context`: freeing them here as well would free them twice.
        if rc < 0 {
            // avformat_open_input frees the context on failure; `context` stays nil.
            throw Demuxer.describeOpenFailure(rc)
        }
        context = ctxOpt
        try check(avformat_find_stream_info(ctxOpt, nil), "reading stream parameters")
        streams = (0..<Int(ctxOpt!.pointee.nb_streams)).map { Demuxer.info(ctxOpt!.pointee.streams[$0]!, index: $0) }
    }

    deinit {
        avformat_close_input(&context)
        cp_interrupt_free(interrupt)
    }

    private static func describeOpenFailure(_ rc: Int32) -> MediaError {
        let detail = String(cString: cp_last_error())
        if rc == cp_averror(EINVAL) {
            // libavformat answers EINVAL when the probed format or a protocol is not on the allowlist.
            let why = detail.isEmpty || detail.hasPrefix("Format not on whitelist")
                ? "its container format is not allowed (playlists, concat scripts and other formats that open further files are refused)"
                : "\(detail) (not allowed)"
            return MediaError(kind: .invalidData, operation: "opening input", message: why, code: rc)
        }
        let e = MediaError(code: rc, operation: "opening input")
        if detail.isEmpty { return e }
        return MediaError(kind: e.kind, operation: e.operation, message: "\(e.message) (\(detail))", code: rc)
    }

    /// FFmpeg's short name of the demuxer used, e.g. "mov,mp4,m4a,3gp,3g2,mj2".
    public var formatName: String { String(cString: context!.pointee.iformat.pointee.name) }
    public var formatLongName: String {
        context!.pointee.iformat.pointee.long_name.map { String(cString: $0) } ?? formatName
    }
    /// Container duration in seconds, if known.
    public var duration: Double? {
        let d = context!.pointee.duration
        return d == cp_nopts() || d <= 0 ? nil : Double(d) / Double(AV_TIME_BASE)
    }
    /// Container start time in seconds, if known.
    public var startTime: Double? {
        let s = context!.pointee.start_time
        return s == cp_nopts() ? nil : Double(s) / Double(AV_TIME_BASE)
    }
    public var bitRate: Int? {
        let b = context!.pointee.bit_rate
        return b > 0 ? Int(b) : nil
    }
    /// Bytes of the input file.
    public var fileSize: Int? {
        guard let pb = context!.pointee.pb else { return nil }
        let s = avio_size(pb)
        return s >= 0 ? Int(s) : nil
    }

    /// The stream FFmpeg would pick for `kind`, if any.
    public func bestStream(_ kind: MediaKind) -> Int? {
        let type: AVMediaType = kind == .video ? AVMEDIA_TYPE_VIDEO : kind == .audio ? AVMEDIA_TYPE_AUDIO : AVMEDIA_TYPE_SUBTITLE
        let i = av_find_best_stream(context, type, -1, -1, nil, 0)
        return i >= 0 ? Int(i) : nil
    }

    /// Reads the next packet; nil at the end of the input. Throws on read errors and interrupts.
    public func read() throws -> Packet? {
        let packet = Packet()
        let rc = av_read_frame(context, packet.pointer)
        // Some demuxers report an interrupted read as the end of the file: ask the callback's state.
        if cp_interrupt_reason(interrupt) != 0 { throw interruptError() }
        if rc == cp_averror_eof() { return nil }
        if rc < 0 {
            if cp_interrupt_reason(interrupt) != 0 { throw interruptError() }
            throw MediaError(code: rc, operation: "reading packet")
        }
        let st = try stream(packet.streamIndex, "reading packet")
        packet.timeBase = Rational(st.pointee.time_base)
        return packet
    }

    /// Stream `index` of the input, checked against the number of streams.
    func stream(_ index: Int, _ operation: @autoclosure () -> String) throws -> UnsafeMutablePointer<AVStream> {
        let ctx = context!
        guard index >= 0, index < Int(ctx.pointee.nb_streams), let st = ctx.pointee.streams[index] else {
            throw MediaError.misuse(operation(), "no stream \(index) (the input has \(ctx.pointee.nb_streams))")
        }
        return st
    }

    /// Stops every read in progress and to come.
    public func cancel() { cp_interrupt_cancel(interrupt) }

    private func interruptError() -> MediaError {
        switch cp_interrupt_reason(interrupt) {
        case 2: return MediaError(kind: .interrupted, operation: "reading input", message: "deadline exceeded")
        case 3: return MediaError(kind: .interrupted, operation: "reading input", message: "interrupted by signal")
        default: return MediaError(kind: .interrupted, operation: "reading input", message: "cancelled")
        }
    }

    static func info(_ st: UnsafeMutablePointer<AVStream>, index: Int) -> StreamInfo {
        let par = st.pointee.codecpar.pointee
        let kind: MediaKind
        switch par.codec_type {
        case AVMEDIA_TYPE_VIDEO: kind = .video
        case AVMEDIA_TYPE_AUDIO: kind = .audio
        case AVMEDIA_TYPE_SUBTITLE: kind = .subtitle
        case AVMEDIA_TYPE_DATA: kind = .data
        case AVMEDIA_TYPE_ATTACHMENT: kind = .attachment
        default: kind = .unknown
        }
        let tb = Rational(st.pointee.time_base)
        func meta(_ key: String) -> String? {
            guard let e = av_dict_get(st.pointee.metadata, key, nil, 0), let v = e.pointee.value else { return nil }
            return String(cString: v)
        }
        var info = StreamInfo(
            index: index, kind: kind,
            codecName: avcodec_get_name(par.codec_id).map { String(cString: $0) } ?? "unknown",
            profile: avcodec_profile_name(par.codec_id, par.profile).map { String(cString: $0) },
            timeBase: tb,
            startTime: st.pointee.start_time == cp_nopts() ? nil : tb.seconds(st.pointee.start_time),
            duration: st.pointee.duration == cp_nopts() || st.pointee.duration <= 0 ? nil : tb.seconds(st.pointee.duration),
            bitRate: par.bit_rate > 0 ? Int(par.bit_rate) : nil,
            isDefault: cp_disposition_default(st) != 0,
            isAttachedPicture: cp_disposition_attached_pic(st) != 0,
            language: meta("language"), title: meta("title"))
        if kind == .video {
            info.width = Int(par.width)
            info.height = Int(par.height)
            info.pixelFormat = par.format >= 0 ? PixelFormat(par.format) : nil
            let sar = st.pointee.sample_aspect_ratio.num > 0 ? st.pointee.sample_aspect_ratio : par.sample_aspect_ratio
            info.sampleAspectRatio = Rational(sar)
            // av_display_rotation_get is counter-clockwise; players rotate the other way to show it upright.
            let ccw = cp_stream_rotation(st)
            if ccw.isFinite {
                let cw = Int((-ccw / 90).rounded()) * 90
                info.rotation = ((cw % 360) + 360) % 360
            }
            info.averageFrameRate = Rational(st.pointee.avg_frame_rate)
            info.realFrameRate = Rational(st.pointee.r_frame_rate)
            switch par.field_order {
            case AV_FIELD_PROGRESSIVE: info.fieldOrder = .progressive
            case AV_FIELD_TT, AV_FIELD_TB: info.fieldOrder = .topFieldFirst
            case AV_FIELD_BB, AV_FIELD_BT: info.fieldOrder = .bottomFieldFirst
            default: info.fieldOrder = .unknown
            }
        } else if kind == .audio {
            info.sampleRate = Int(par.sample_rate)
            info.channels = Int(par.ch_layout.nb_channels)
            var buf = [CChar](repeating: 0, count: 128)
            var layout = par.ch_layout
            if av_channel_layout_describe(&layout, &buf, buf.count) >= 0 {
                info.channelLayout = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
        }
        return info
    }
}
