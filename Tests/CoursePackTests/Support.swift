import Foundation
import Testing

/// Paths and helpers shared by the tests. Fixtures are made with the ffmpeg program (an independent
/// reference, never part of the product) and checked with ffprobe.
enum Support {
    static let repoRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    /// The `coursepack` built beside the test bundle (the configuration `swift test` runs: release
    /// under `make test`, debug under a plain `swift test`).
    static let binary: String = {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var dir = runner.deletingLastPathComponent()
        // The runner is .build/CONFIG/CoursePackPackageTests.xctest (a file on Linux; a bundle's
        // Contents/MacOS/ executable on macOS).
        while dir.path != "/", !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("coursepack").path) {
            dir = dir.deletingLastPathComponent()
        }
        let beside = dir.appendingPathComponent("coursepack").path
        return FileManager.default.isExecutableFile(atPath: beside) ? beside : repoRoot.appendingPathComponent(".build/debug/coursepack").path
    }()
    static let fixtureDir: URL = {
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coursepack-fixtures-v1")
        try? FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }()

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a program to completion, capturing its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: Double = 1800) throws -> Result {
        let env = environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } }
        let r = try Child.run(executable, arguments, environment: env, timeout: timeout)
        var stderr = String(decoding: r.stderr, as: UTF8.self)
        if r.timedOut { stderr += "\n[killed after \(Int(timeout)) s: \(executable) \(arguments.joined(separator: " "))]" }
        return Result(status: r.status, stdout: String(decoding: r.stdout, as: UTF8.self), stderr: stderr)
    }

    /// Runs coursepack.
    @discardableResult
    static func coursepack(_ arguments: String...) throws -> Result { try run(binary, arguments) }

    /// A new empty folder for one test.
    static func scratch(_ name: String = #function) throws -> URL {
        let safe = name.filter { $0.isLetter || $0.isNumber }
        let d = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("coursepack-test-\(safe)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
        return d
    }

    /// A fixture made once by ffmpeg with `arguments` (output path appended), cached across tests.
    static func fixture(_ name: String, _ arguments: [String]) throws -> String {
        let final = fixtureDir.appendingPathComponent(name)
        if FileManager.default.fileExists(atPath: final.path) { return final.path }
        let tmp = fixtureDir.appendingPathComponent("tmp-\(UUID().uuidString)-\(name)")
        let r = try run("ffmpeg", ["-v", "error", "-y"] + arguments + [tmp.path])
        guard r.status == 0 else { throw FixtureError(description: "ffmpeg failed for \(name): \(r.stderr)") }
        _ = try? FileManager.default.moveItem(at: tmp, to: final)
        try? FileManager.default.removeItem(at: tmp)
        return final.path
    }

    struct FixtureError: Error, CustomStringConvertible { var description: String }

    /// A small ladder for 240p fixtures: two video rungs, an AAC and an Opus audio-only rendition.
    static func testPreset() throws -> String {
        let url = fixtureDir.appendingPathComponent("test-ladder.json")
        let json = """
        { "name": "test", "segmentSeconds": 6, "keyframeSeconds": 2, "x264Preset": "ultrafast",
          "rungs": [ { "name": "v240", "height": 240, "crf": 28, "maxKbps": 400, "audio": "a48" },
                     { "name": "v144", "height": 144, "crf": 28, "maxKbps": 100, "maxFps": 15, "audio": "a48" } ],
          "audio": [ { "name": "a48", "kbps": 48, "channels": 1, "audioOnly": true },
                     { "name": "o16", "codec": "opus", "kbps": 16, "channels": 1, "audioOnly": true } ] }
        """
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static func ffprobe(_ arguments: [String]) throws -> [String: Any] {
        let r = try run("ffprobe", ["-v", "error", "-of", "json"] + arguments)
        guard r.status == 0, let obj = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any] else {
            throw FixtureError(description: "ffprobe \(arguments) failed: \(r.stderr)")
        }
        return obj
    }

    /// Validates a package's lecture.json against docs/lecture.schema.json with Python's jsonschema.
    static func validateLectureJSON(_ package: URL) throws -> Result {
        try run("python3", ["-c", "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])), json.load(open(sys.argv[2])))",
                            package.appendingPathComponent("lecture.json").path,
                            repoRoot.appendingPathComponent("docs/lecture.schema.json").path])
    }

    /// Folders left beside `output` by a run (temporary or aside folders must not survive).
    static func leftovers(beside output: URL) -> [String] {
        let parent = output.deletingLastPathComponent()
        let items = (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? []
        return items.filter { $0.hasPrefix(".\(output.lastPathComponent).") }
    }
}

/// Independent reading of a package: a minimal playlist reader and ffprobe, not the product's code.
struct PackageProbe {
    let dir: URL

    /// Variant URIs and their attribute lines from master.m3u8.
    func variants() throws -> [(uri: String, attributes: String)] {
        let lines = try String(contentsOf: dir.appendingPathComponent("master.m3u8"), encoding: .utf8).split(separator: "\n").map(String.init)
        var out: [(String, String)] = []
        for (i, l) in lines.enumerated() where l.hasPrefix("#EXT-X-STREAM-INF:") && i + 1 < lines.count {
            out.append((lines[i + 1], l))
        }
        return out
    }

    func segments(_ playlist: String) throws -> (map: String?, entries: [(uri: String, duration: Double)]) {
        let text = try String(contentsOf: dir.appendingPathComponent(playlist), encoding: .utf8)
        var map: String?
        var entries: [(String, Double)] = []
        var pending: Double?
        for l in text.split(separator: "\n").map(String.init) {
            if l.hasPrefix("#EXT-X-MAP:URI=\"") { map = String(l.dropFirst(16).prefix { $0 != "\"" }) }
            if l.hasPrefix("#EXTINF:") { pending = Double(l.dropFirst(8).prefix { $0 != "," }) }
            if !l.hasPrefix("#"), !l.isEmpty, let d = pending {
                entries.append((l, d))
                pending = nil
            }
        }
        return (map, entries)
    }

    /// ffprobe's view of a segment joined to its initialisation segment: first video packet's flags,
    /// stream facts and frame count.
    /// Segment `index` of a rendition joined to its init segment, as a player reads it, in a
    /// temporary file the caller removes.
    func joinedSegment(_ playlist: String, _ index: Int) throws -> URL {
        let base = dir.appendingPathComponent(playlist).deletingLastPathComponent()
        let s = try segments(playlist)
        var data = Data()
        if let m = s.map { data += try Data(contentsOf: base.appendingPathComponent(m)) }
        data += try Data(contentsOf: base.appendingPathComponent(s.entries[index].uri))
        let tmp = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("seg-\(UUID().uuidString).mp4")
        try data.write(to: tmp)
        return tmp
    }

    func probeSegment(_ playlist: String, _ index: Int) throws -> (firstFlags: String, stream: [String: Any]) {
        let tmp = try joinedSegment(playlist, index)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let j = try Support.ffprobe(["-select_streams", "v:0", "-show_streams", "-show_packets", "-read_intervals", "%+#1", tmp.path])
        let packets = j["packets"] as? [[String: Any]] ?? []
        let streams = j["streams"] as? [[String: Any]] ?? []
        return (packets.first?["flags"] as? String ?? "", streams.first ?? [:])
    }

    /// Presentation times of the video packets of segment `index` of a rendition (init segment and
    /// segment joined, as a player reads them); with `firstOnly`, only the first packet's.
    func videoPacketTimes(_ playlist: String, _ index: Int, firstOnly: Bool = false) throws -> [Double] {
        let tmp = try joinedSegment(playlist, index)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let j = try Support.ffprobe(["-select_streams", "v:0", "-show_entries", "packet=pts_time"]
                                    + (firstOnly ? ["-read_intervals", "%+#1"] : []) + [tmp.path])
        return ((j["packets"] as? [[String: Any]]) ?? []).compactMap { ($0["pts_time"] as? String).flatMap(Double.init) }
    }

    /// The earliest presentation time of each stream kind ("video", "audio") in segment `index` of
    /// a rendition (init segment and segment joined, as a player reads them).
    func segmentStarts(_ playlist: String, _ index: Int) throws -> [String: Double] {
        let tmp = try joinedSegment(playlist, index)
        defer { try? FileManager.default.removeItem(at: tmp) }
        let j = try Support.ffprobe(["-show_streams", "-show_packets", tmp.path])
        var kinds: [Int: String] = [:]
        for st in j["streams"] as? [[String: Any]] ?? [] {
            if let i = st["index"] as? Int, let k = st["codec_type"] as? String { kinds[i] = k }
        }
        var starts: [String: Double] = [:]
        for p in j["packets"] as? [[String: Any]] ?? [] {
            guard let i = p["stream_index"] as? Int, let kind = kinds[i], let t = Double(p["pts_time"] as? String ?? "") else { continue }
            starts[kind] = min(starts[kind] ?? .infinity, t)
        }
        return starts
    }

    /// Duration and frame count of a rendition as ffprobe decodes it through its playlist.
    func decodedDuration(_ playlist: String) throws -> Double {
        let j = try Support.ffprobe(["-show_entries", "format=duration", dir.appendingPathComponent(playlist).path])
        return Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? -1
    }
}
