import FFmpeg

/// Process-wide signal handling and FFmpeg's log, for the command line, the batch and the server:
/// they reach FFmpeg only through Lecture.
public enum Signals {
    /// SIGINT and SIGTERM set `received` and interrupt every FFmpeg operation in flight.
    public static func install() { ProcessSignals.install() }
    /// The signal number received, or nil.
    public static var received: Int32? { ProcessSignals.received }
    /// For a worker process: be killed when the parent `pid` dies. False if it is already gone.
    public static func dieWithParent(_ pid: Int32) -> Bool { ProcessSignals.dieWithParent(pid) }
}

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
