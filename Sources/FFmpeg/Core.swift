internal import CFFmpeg
internal import CFFmpegShims
import Synchronization

/// A rational number as FFmpeg uses for time bases and aspect ratios.
public struct Rational: Sendable, Hashable, CustomStringConvertible {
    public var num: Int32
    public var den: Int32

    public init(_ num: Int32, _ den: Int32) {
        self.num = num
        self.den = den
    }

    init(_ r: AVRational) { self.init(r.num, r.den) }
    var av: AVRational { AVRational(num: num, den: den) }

    public var value: Double { den == 0 ? 0 : Double(num) / Double(den) }
    public var isValid: Bool { num > 0 && den > 0 }
    public var description: String { "\(num)/\(den)" }

    /// Seconds for a timestamp counted in this time base.
    public func seconds(_ ts: Int64) -> Double { Double(ts) * Double(num) / Double(den) }
    /// A timestamp in this time base for a time in seconds, rounded to nearest.
    public func timestamp(_ seconds: Double) -> Int64 { Int64((seconds * Double(den) / Double(num)).rounded()) }

    /// Rescales `ts` from this time base to `to` (av_rescale_q, exact integer arithmetic).
    public func rescale(_ ts: Int64, to: Rational) -> Int64 { av_rescale_q(ts, av, to.av) }

    /// The rational nearest to a double, as FFmpeg's av_d2q.
    public static func approximating(_ value: Double, max: Int32 = 100_000) -> Rational { Rational(av_d2q(value, max)) }
}

/// A pixel format, by FFmpeg's name; the raw value stays inside this module.
public struct PixelFormat: Sendable, Hashable, CustomStringConvertible {
    let raw: Int32
    init(_ raw: Int32) { self.raw = raw }
    init(_ fmt: AVPixelFormat) { raw = fmt.rawValue }
    var av: AVPixelFormat { AVPixelFormat(rawValue: raw) }

    public static let yuv420p = PixelFormat(AV_PIX_FMT_YUV420P)
    /// Full-range 4:2:0, what JPEG encoders take.
    public static let yuvj420p = PixelFormat(AV_PIX_FMT_YUVJ420P)
    public static let gray = PixelFormat(AV_PIX_FMT_GRAY8)
    public static let none = PixelFormat(AV_PIX_FMT_NONE)

    public init?(name: String) {
        let f = av_get_pix_fmt(name)
        if f == AV_PIX_FMT_NONE { return nil }
        raw = f.rawValue
    }

    public var name: String {
        guard let p = av_get_pix_fmt_name(av) else { return "none" }
        return String(cString: p)
    }
    /// Bits per component of the first plane (8 for yuv420p, 10 for yuv420p10le).
    public var bitDepth: Int {
        guard let d = av_pix_fmt_desc_get(av) else { return 0 }
        return Int(d.pointee.comp.0.depth)
    }
    public var description: String { name }
}

/// Log levels, in FFmpeg's order of severity.
public enum LogLevel: Int32, Sendable, Comparable {
    case quiet = -8, panic = 0, fatal = 8, error = 16, warning = 24, info = 32, verbose = 40, debug = 48

    init(av: Int32) {
        switch av {
        case ..<8: self = .panic
        case ..<16: self = .fatal
        case ..<24: self = .error
        case ..<32: self = .warning
        case ..<40: self = .info
        case ..<48: self = .verbose
        default: self = .debug
        }
    }
    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }
}

/// Routes FFmpeg's av_log output to a Swift handler.
public enum FFmpegLog {
    public typealias Handler = @Sendable (LogLevel, String) -> Void

    private static let box = Mutex<Handler?>(nil)

    /// Installs `handler` for messages at `maxLevel` or more severe. Lines come formatted, one per call,
    /// from whatever thread FFmpeg logs on.
    public static func install(maxLevel: LogLevel, handler: @escaping Handler) {
        box.withLock { $0 = handler }
        cp_log_install(maxLevel.rawValue) { level, line in
            guard let line, let handler = FFmpegLog.box.withLock({ $0 }) else { return }
            handler(LogLevel(av: level), String(cString: line))
        }
    }
}
