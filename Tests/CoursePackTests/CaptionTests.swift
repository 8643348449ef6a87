import Foundation
import Testing
@testable import Lecture
@testable import LectureModel

@Suite(.blockingThreads) struct CaptionTests {
    @Test func sidecarAndCommandLineCaptionsBecomeASubtitlesGroup() throws {
        let dir = try Support.scratch()
        let src = dir.appendingPathComponent("talk.mp4")
        try FileManager.default.copyItem(atPath: Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path, toPath: src.path)
        try "1\r\n00:00:01,000 --> 00:00:04,500\r\nWelcome to this lecture.\r\n\r\n2\r\n00:00:05,000 --> 00:00:08,000\r\nSegments matter.\r\n"
            .write(to: dir.appendingPathComponent("talk.en.srt"), atomically: true, encoding: .utf8)
        let fr = dir.appendingPathComponent("french.vtt")
        try "WEBVTT\n\nNOTE made by hand\n\nintro\n00:02.000 --> 00:06.000 align:start\nBonjour\n".write(to: fr, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src.path, "-o", out.path, "--preset", "minimal", "--captions", "\(fr.path):fr")
        #expect(r.status == 0, "\(r.stderr)")
        let master = try String(contentsOf: out.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(master.contains(#"TYPE=SUBTITLES,GROUP-ID="subs",NAME="en",LANGUAGE="en""#))
        #expect(master.contains(#"TYPE=SUBTITLES,GROUP-ID="subs",NAME="fr",LANGUAGE="fr""#))
        let variants = master.split(separator: "\n").filter { $0.hasPrefix("#EXT-X-STREAM-INF") }
        #expect(!variants.isEmpty && variants.allSatisfy { $0.contains(#"SUBTITLES="subs""#) })
        // ffmpeg reads the caption playlist back and finds the cues.
        let d = try Support.run("ffmpeg", ["-v", "error", "-i", out.appendingPathComponent("subs/en/index.m3u8").path, "-f", "webvtt", "-"])
        #expect(d.status == 0, "\(d.stderr)")
        #expect(d.stdout.contains("Welcome to this lecture.") && d.stdout.contains("Segments matter."))
        let f = try Support.run("ffmpeg", ["-v", "error", "-i", out.appendingPathComponent("subs/fr/index.m3u8").path, "-f", "webvtt", "-"])
        #expect(f.stdout.contains("Bonjour"))
        // Every caption segment carries the timestamp map; the package validates.
        let seg = try String(contentsOf: out.appendingPathComponent("subs/en/seg_00000.vtt"), encoding: .utf8)
        #expect(seg.contains("X-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000"))
        #expect(try Support.coursepack("validate", out.path).status == 0)
        #expect(try Support.validateLectureJSON(out).status == 0)
    }

    @Test func malformedCaptionNamesFileAndLine() throws {
        let dir = try Support.scratch()
        let bad = dir.appendingPathComponent("bad.srt")
        try "1\n00:00:01,000 --> 00:00:04,500\nFine.\n\n2\n00:00:05,000 --> 00:0x:08,000\nBroken.\n".write(to: bad, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("pkg")
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let r = try Support.coursepack("transcode", sample, "-o", out.path, "--preset", "minimal", "--captions", bad.path)
        #expect(r.status == 65)
        #expect(r.stderr.contains("\(bad.path): line 6: bad timestamp \"00:0x:08,000\""), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    @Test func parserReadsSRTAndWebVTT() throws {
        let dir = try Support.scratch()
        let srt = dir.appendingPathComponent("a.srt")
        try "\u{FEFF}1\r\n00:00:01,500 --> 00:00:02,000\r\nTwo\r\nlines\r\n\r\n".write(to: srt, atomically: true, encoding: .utf8)
        let cues = try CaptionParser.parse(CaptionInput(path: srt.path, language: nil))
        #expect(cues == [Cue(start: 1.5, end: 2, text: "Two\nlines")])
        let vtt = dir.appendingPathComponent("b.vtt")
        try "WEBVTT\n\n01:02.250 --> 01:03.000\nHi\n".write(to: vtt, atomically: true, encoding: .utf8)
        #expect(try CaptionParser.parse(CaptionInput(path: vtt.path, language: "en")).first?.start == 62.25)
        try "no header\n\n00:01.000 --> 00:02.000\nx\n".write(to: vtt, atomically: true, encoding: .utf8)
        #expect(throws: CoursePackError.self) { try CaptionParser.parse(CaptionInput(path: vtt.path, language: nil)) }
        #expect(CaptionInput(argument: "/a/b:c/talk.srt:pt-BR") == CaptionInput(path: "/a/b:c/talk.srt", language: "pt-BR"))
        #expect(CaptionInput(argument: "talk.srt") == CaptionInput(path: "talk.srt", language: nil))
    }
}
