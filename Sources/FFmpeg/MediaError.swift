internal import CFFmpeg

/// An error from FFmpeg or from a wrapper's own checks, with what was being done and FFmpeg's message.
public struct MediaError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The input is not a readable media file (FFmpeg's AVERROR_INVALIDDATA and kin).
        case invalidData
        /// A file could not be opened, read or written.
        case io
        /// An operation was stopped by its interrupt callback (cancel, deadline or signal).
        case interrupted
        /// A codec, format or option is not available in this FFmpeg build.
        case unsupported
        /// An encoder refused an option the caller gave it (a preset's x264 options).
        case refusedOption
        /// A library loaded on demand (libavfilter) is missing or not the version the headers name: the
        /// machine's fault, not the input's.
        case unavailable
        /// Anything else FFmpeg reported.
        case other
    }

    public let kind: Kind
    /// FFmpeg's error code, or 0 for the wrapper's own checks.
    public let code: Int32
    /// What was being done, e.g. "opening input".
    public let operation: String
    /// FFmpeg's message for `code`, or the wrapper's own reason.
    public let message: String

    public init(kind: Kind, operation: String, message: String, code: Int32 = 0) {
        self.kind = kind
        self.code = code
        self.operation = operation
        self.message = message
    }

    /// Builds an error from an FFmpeg return code; the message comes from `av_strerror`.
    init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
        self.message = MediaError.describe(code)
        if code == cp_averror_invaliddata() || code == cp_averror_eof() {
            kind = .invalidData
        } else if code == cp_averror_exit() {
            kind = .interrupted
        } else if code == cp_averror(ENOENT) || code == cp_averror(EACCES) || code == cp_averror(EIO)
                    || code == cp_averror(ENOSPC) || code == cp_averror(EISDIR) || code == cp_averror(EROFS) {
            kind = .io
        } else if code == cp_averror(ENOSYS) || code == cp_averror(EOPNOTSUPP) {
            kind = .unsupported
        } else {
            kind = .other
        }
    }

    public var description: String { "\(operation): \(message)" }

    /// A wrapper called out of order or with an index it does not have: a bug in the caller.
    static func misuse(_ operation: String, _ message: String) -> MediaError {
        MediaError(kind: .other, operation: operation, message: message)
    }

    /// The input's fault: data a decoder or demuxer could not make sense of. Not so a lack of memory
    /// or a call out of order (EAGAIN), which say nothing about the input.
    public var isDataError: Bool {
        switch kind {
        case .invalidData: return true
        case .other: return code != cp_averror(ENOMEM) && code != cp_averror_eagain() && code != 0
        default: return false
        }
    }

    /// The disk (or the user's quota) is full.
    public var isNoSpace: Bool { code == cp_averror(ENOSPC) || code == cp_averror(EDQUOT) }

    /// FFmpeg's text for an error code (av_err2str is a macro Swift cannot call).
    public static func describe(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        if av_strerror(code, &buffer, buffer.count) < 0 {
            return "error \(code)"
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// What a send/receive codec or a filter graph hands back: a value, a request for more input, or
/// the end of its stream. Errors stay errors (thrown).
public enum Pull<Value> {
    case value(Value)
    case needsInput
    case endOfStream

    init(code: Int32, value: @autoclosure () -> Value, operation: @autoclosure () -> String) throws {
        if code == cp_averror_eagain() {
            self = .needsInput
        } else if code == cp_averror_eof() {
            self = .endOfStream
        } else {
            try check(code, operation())
            self = .value(value())
        }
    }
}

/// Throws a MediaError when an FFmpeg call returned a negative code; returns the code otherwise.
@discardableResult
func check(_ code: Int32, _ operation: @autoclosure () -> String) throws -> Int32 {
    if code < 0 { throw MediaError(code: code, operation: operation()) }
    return code
}
