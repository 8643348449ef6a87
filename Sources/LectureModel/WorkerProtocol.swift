import Foundation

/// The contract between a lecture's child process (`coursepack transcode --json`) and the process
/// that started it (a batch, the server, a worker): the arguments it gets and the JSON lines it
/// prints. Both sides use these types, so the two cannot drift apart.
public struct TranscodeRequest: Sendable, Equatable {
    public var source: String
    /// The package folder; the child builds it beside and renames it into place.
    public var destination: String
    public var presetFile: String
    /// Recorded in lecture.json's build.key.
    public var buildKey: String
    /// Cores the child plans its encoder threads for.
    public var cores: Int
    public var captions: [CaptionInput] = []
    public var renditionsOnly = false
    /// The speech stage (`--asr-model`, `--language`); nil: none.
    public var speech: SpeechOptions?

    public init(source: String, destination: String, presetFile: String, buildKey: String, cores: Int) {
        self.source = source
        self.destination = destination
        self.presetFile = presetFile
        self.buildKey = buildKey
        self.cores = cores
    }

    /// The child's command line after the program name.
    public var arguments: [String] {
        var a = ["transcode", source, "-o", destination, "--preset", presetFile, "--json", "--cores", "\(cores)", "--build-key", buildKey]
        for c in captions { a += ["--captions", c.language.map { "\(c.path):\($0)" } ?? c.path] }
        if renditionsOnly { a.append("--renditions-only") }
        if let speech {
            a += ["--asr-model", speech.model]
            if let l = speech.language { a += ["--language", l] }
        }
        return a
    }
}

/// One JSON line of `coursepack transcode --json` before its summary object: `{"event": "progress", …}`
/// or `{"event": "error", …}`. Lines that are neither (the summary, anything else) parse to nil.
public enum TranscodeEvent: Sendable, Equatable {
    /// `eta` is nil until a speed is known (-1 on the wire).
    case progress(position: Double, duration: Double, percent: Double, speed: Double, eta: Double?)
    case error(category: CoursePackError.Category, path: String, reason: String)

    private struct Wire: Codable {
        var event: String
        var position: Double?
        var duration: Double?
        var percent: Double?
        var speed: Double?
        var eta: Double?
        var category: CoursePackError.Category?
        var path: String?
        var reason: String?
        var exitCode: Int32?
    }

    /// The event as one line of JSON (sorted keys), without the newline.
    public func jsonLine(exitCode: (CoursePackError.Category) -> Int32) -> String {
        let wire: Wire
        switch self {
        case let .progress(position, duration, percent, speed, eta):
            wire = Wire(event: "progress", position: position, duration: duration, percent: percent, speed: speed, eta: eta ?? -1)
        case let .error(category, path, reason):
            wire = Wire(event: "error", category: category, path: path, reason: reason, exitCode: exitCode(category))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(wire)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public init?(line: String) {
        guard line.hasPrefix("{"), let w = try? JSONDecoder().decode(Wire.self, from: Data(line.utf8)) else { return nil }
        switch w.event {
        case "progress":
            guard let percent = w.percent else { return nil }
            self = .progress(position: w.position ?? 0, duration: w.duration ?? 0, percent: percent, speed: w.speed ?? 0,
                             eta: w.eta.flatMap { $0 >= 0 ? $0 : nil })
        case "error":
            self = .error(category: w.category ?? .internal, path: w.path ?? "", reason: w.reason ?? line)
        default:
            return nil
        }
    }
}

/// Progress of a run, reported from the reading thread about twice a second.
public struct TranscodeProgress: Sendable, Codable {
    /// Seconds of the lecture decoded so far.
    public var position: Double
    public var duration: Double
    /// Wall-clock seconds since decoding started.
    public var elapsed: Double
    public var fraction: Double { duration > 0 ? min(1, position / duration) : 0 }
    /// Media seconds per wall-clock second.
    public var speed: Double { elapsed > 0 ? position / elapsed : 0 }
    /// Estimated seconds left.
    public var eta: Double? { speed > 0 ? max(0, (duration - position) / speed) : nil }

    public init(position: Double, duration: Double, elapsed: Double) {
        self.position = position
        self.duration = duration
        self.elapsed = elapsed
    }
}
