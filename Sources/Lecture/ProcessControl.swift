import FFmpeg

/// FFmpeg's own log lines, routed to a handler.
public enum MediaLog {
    public enum Level: Sendable { case error, warning, info, debug }

    /// Sends FFmpeg's lines at `maxLevel` and more severe to `handler`; `nil` silences them.
    public static func install(maxLevel: Level?, handler: @escaping @Sendable (String) -> Void) {
        let level: LogLevel
        switch maxLevel {
        case nil: level = .quiet
        case .error?: level = .error
        case .warning?: level = .warning
        case .info?: level = .info
        case .debug?: level = .debug
        }
        FFmpegLog.install(maxLevel: level) { _, line in handler(line) }
    }
}
