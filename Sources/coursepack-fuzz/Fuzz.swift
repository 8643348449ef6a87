import Course
import Foundation
import Lecture
import LectureModel

// libFuzzer targets for the parsers that read what users and disks hand CoursePack: the MP4 box
// reader, HLS playlists, SRT/WebVTT captions, course.json and presets. Built only by `make fuzz`
// (Package.swift declares this target when COURSEPACK_FUZZ is set), with -sanitize=fuzzer; the
// target is chosen by $FUZZ_TARGET. A crash, a trap or a sanitizer report is a finding; thrown
// errors are the parsers doing their job.

let target = ProcessInfo.processInfo.environment["FUZZ_TARGET"] ?? "mp4"
let scratch: URL = {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coursepack-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    // A course folder with two media files for course.json to name.
    for name in ["intro.mp4", "week 2.mp4"] {
        FileManager.default.createFile(atPath: dir.appendingPathComponent(name).path, contents: Data([0]))
    }
    return dir
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let data = start.map { Data(bytes: $0, count: count) } ?? Data()
    switch target {
    case "mp4":
        _ = try? MP4Fragments.fragments(of: data, defaultDuration: 1024)
        _ = try? MP4Fragments.timing(initSegment: data)
        _ = try? MP4Fragments.sampleEntries(initSegment: data)
    case "playlist":
        guard let text = String(data: data, encoding: .utf8) else { return 0 }
        if let p = try? MediaPlaylist(text: text) {
            let sizes = p.segments.map { $0.byteRange?.length ?? 1000 }
            _ = MeasuredRate(sizes: sizes, durations: p.segments.map(\.duration), target: Double(p.targetDuration ?? 6))
        }
        _ = try? MasterPlaylist(text: text)
    case "captions":
        for ext in ["srt", "vtt"] {
            let url = scratch.appendingPathComponent("captions.\(ext)")
            try? data.write(to: url)
            _ = try? CaptionParser.parse(CaptionInput(path: url.path, language: "en"))
        }
    case "course":
        try? data.write(to: scratch.appendingPathComponent("course.json"))
        _ = try? CourseSpec.load(courseDirectory: scratch.path)
    case "preset":
        let url = scratch.appendingPathComponent("preset.json")
        try? data.write(to: url)
        _ = try? Preset.load(url)
    default:
        fatalError("FUZZ_TARGET must be mp4, playlist, captions, course or preset")
    }
    return 0
}

// SwiftPM links an executable's entry point as `<module>_main`; libFuzzer's driver runs from here.
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                     _ callback: @convention(c) (UnsafeRawPointer?, Int) -> CInt) -> CInt

@_cdecl("coursepack_fuzz_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var count = argc
    var arguments = argv
    return runFuzzerDriver(&count, &arguments) { start, size in fuzz(start, size) }
}
