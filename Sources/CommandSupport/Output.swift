public import Foundation
public import LectureModel
import Synchronization

/// Everything the command line prints, in one place.
public enum Output {
    /// One line at a time on each stream, whichever thread writes it.
    private static let lock = Mutex(())

    public static func stderr(_ line: String) {
        lock.withLock { _ in FileHandle.standardError.write(Data((line + "\n").utf8)) }
    }

    public static func jsonLine(_ object: [String: Any]) {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        lock.withLock { _ in FileHandle.standardOutput.write(data + Data("\n".utf8)) }
    }

    /// One line on stdout.
    public static func line(_ text: String) {
        lock.withLock { _ in FileHandle.standardOutput.write(Data((text + "\n").utf8)) }
    }

    public static func jsonObject<T: Encodable>(_ value: T) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return }
        lock.withLock { _ in FileHandle.standardOutput.write(data + Data("\n".utf8)) }
    }

    public static func progressLine(_ p: TranscodeProgress) {
        let eta = p.eta.map { String(format: "%d:%02d", Int($0) / 60, Int($0) % 60) } ?? "--:--"
        let line = String(format: "\r%5.1f%%  %5.2fx real time  ETA %@   ", p.fraction * 100, p.speed, eta)
        lock.withLock { _ in FileHandle.standardError.write(Data(line.utf8)) }
    }

    public static func describe(_ info: SourceInfo) -> String {
        var lines = [info.path]
        let size = info.sizeBytes.map { String(format: "%.1f MB", Double($0) / 1e6) } ?? "size unknown"
        let rate = info.bitRate.map { "\($0 / 1000) kb/s" } ?? "bitrate unknown"
        lines.append("  container  \(info.container) (\(info.containerName)), \(String(format: "%.2f", info.duration)) s, \(size), \(rate)")
        if let v = info.video {
            var s = "  video      #\(v.index) \(v.codec)\(v.profile.map { " (\($0))" } ?? "") \(v.width)x\(v.height) \(v.pixelFormat) \(v.bitDepth)-bit"
            s += ", SAR \(v.sampleAspectRatio), \(String(format: "%.3f", v.frameRate)) fps\(v.variableFrameRate ? " (variable)" : "")"
            s += ", \(v.fieldOrder == "progressive" ? "progressive" : v.fieldOrder == "unknown" ? "scan unknown" : "interlaced (\(v.fieldOrder))")"
            if v.rotation != 0 { s += ", rotated \(v.rotation)°" }
            s += ", shown \(v.displayWidth)x\(v.displayHeight)"
            lines.append(s)
        } else {
            lines.append("  video      none")
        }
        for a in info.audio {
            var s = "  audio      #\(a.index) \(a.codec) \(a.sampleRate) Hz \(a.layout.isEmpty ? "\(a.channels) channels" : a.layout)"
            if let l = a.language { s += " [\(l)]" }
            if a.isDefault { s += " default" }
            if a.index == info.selectedAudio { s += "  <- packaged" }
            lines.append(s)
        }
        if info.audio.isEmpty { lines.append("  audio      none") }
        for n in info.notes { lines.append("  note       \(n)") }
        return lines.joined(separator: "\n")
    }
}

/// Finds presets by name: $COURSEPACK_PRESETS, a Presets folder above the executable, ./Presets.
public enum PresetLocator {
    public static func load(_ nameOrPath: String) throws -> Preset { try Preset.load(url(nameOrPath)) }

    /// The preset file a name or path stands for.
    public static func url(_ nameOrPath: String) throws -> URL {
        if nameOrPath.contains("/") || nameOrPath.hasSuffix(".json") {
            return URL(fileURLWithPath: nameOrPath).standardizedFileURL
        }
        for dir in searchPath() {
            let url = dir.appendingPathComponent("\(nameOrPath).json")
            if FileManager.default.fileExists(atPath: url.path) { return url.standardizedFileURL }
        }
        let known = searchPath().flatMap { (try? FileManager.default.contentsOfDirectory(atPath: $0.path)) ?? [] }
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        throw CoursePackError(.usage, path: nameOrPath, "no such preset\(known.isEmpty ? "" : " (known: \(Set(known).sorted().joined(separator: ", ")))")")
    }

    public static func searchPath() -> [URL] {
        var dirs: [URL] = []
        if let env = ProcessInfo.processInfo.environment["COURSEPACK_PRESETS"] { dirs.append(URL(fileURLWithPath: env)) }
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            dirs.append(dir.appendingPathComponent("Presets"))
            dir = dir.deletingLastPathComponent()
        }
        dirs.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Presets"))
        return dirs
    }
}
