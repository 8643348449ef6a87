import Course
import Foundation
import Lecture
import LectureModel
import Testing

/// Replays the fuzzing seeds and every input `make fuzz` kept (Tests/fuzz/crashers) through the
/// parsers the fuzz targets drive: each must come back with a value or a thrown error, never a trap.
@Suite(.blockingThreads) struct FuzzRegressionTests {
    static let root = Support.repoRoot.appendingPathComponent("Tests/fuzz")

    static func inputs(_ target: String) throws -> [URL] {
        var files: [URL] = []
        for folder in ["seeds", "crashers"] {
            let dir = root.appendingPathComponent(folder).appendingPathComponent(target)
            for name in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where !name.hasPrefix(".") {
                files.append(dir.appendingPathComponent(name))
            }
        }
        return files
    }

    @Test(arguments: ["mp4", "playlist", "captions", "course", "preset"])
    func replay(_ target: String) throws {
        let files = try Self.inputs(target)
        #expect(!files.isEmpty, "no seeds for \(target)")
        let scratch = try Support.scratch("fuzz-\(target)")
        for name in ["intro.mp4", "week 2.mp4"] {
            FileManager.default.createFile(atPath: scratch.appendingPathComponent(name).path, contents: Data([0]))
        }
        for file in files {
            let data = try Data(contentsOf: file)
            switch target {
            case "mp4":
                _ = try? MP4Fragments.fragments(of: data, defaultDuration: 1024)
                _ = try? MP4Fragments.timing(initSegment: data)
                _ = try? MP4Fragments.sampleEntries(initSegment: data)
            case "playlist":
                if let text = String(data: data, encoding: .utf8) {
                    if let p = try? MediaPlaylist(text: text) {
                        _ = MeasuredRate(sizes: p.segments.map { $0.byteRange?.length ?? 1000 }, durations: p.segments.map(\.duration),
                                         target: Double(p.targetDuration ?? 6))
                    }
                    _ = try? MasterPlaylist(text: text)
                }
            case "captions":
                for ext in ["srt", "vtt"] {
                    let url = scratch.appendingPathComponent("captions.\(ext)")
                    try data.write(to: url)
                    _ = try? CaptionParser.parse(CaptionInput(path: url.path, language: "en"))
                }
            case "course":
                try data.write(to: scratch.appendingPathComponent("course.json"))
                _ = try? CourseSpec.load(courseDirectory: scratch.path)
            default:
                let url = scratch.appendingPathComponent("preset.json")
                try data.write(to: url)
                _ = try? Preset.load(url)
            }
        }
    }

    @Test func seedsParse() throws {
        // The seeds are valid inputs: a harness whose seeds all fail to parse explores nothing.
        let media = try String(contentsOf: Self.root.appendingPathComponent("seeds/playlist/media.m3u8"), encoding: .utf8)
        #expect(try MediaPlaylist(text: media).segments.count > 3)
        #expect(try MP4Fragments.sampleEntry(initSegment: Data(contentsOf: Self.root.appendingPathComponent("seeds/mp4/init.mp4"))) == "avc1")
        #expect(try Preset.load(Self.root.appendingPathComponent("seeds/preset/minimal.json")).name == "minimal")
    }
}
