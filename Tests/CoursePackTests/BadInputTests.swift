import Foundation
import Testing

/// Bad and hostile inputs: one line naming the file and the reason, the documented exit code, no output.
@Suite(.blockingThreads) struct BadInputTests {
    func expectRefused(_ input: String, code: Int32, reason: String, output: URL? = nil, extra: [String] = []) throws {
        let out = try output ?? Support.scratch().appendingPathComponent("pkg")
        let r = try Support.run(Support.binary, ["transcode", input, "-o", out.path] + extra)
        #expect(r.status == code, "exit \(r.status), stderr: \(r.stderr)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "stderr: \(r.stderr)")
        #expect(lines.first?.contains(input) == true || lines.first?.contains(out.deletingLastPathComponent().path) == true, "\(r.stderr)")
        #expect(r.stderr.lowercased().contains(reason.lowercased()), "expected \"\(reason)\" in: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "output folder was left behind")
        #expect(Support.leftovers(beside: out).isEmpty, "temporary folders left: \(Support.leftovers(beside: out))")
    }

    @Test func fullDiskIsAnOutputErrorAndLeavesNothing() throws {
        // A 1 MB file system (tmpfs; the tests run as root, as CI does) fills in the middle of the pass.
        let mountPoint = try Support.scratch().appendingPathComponent("small")
        try FileManager.default.createDirectory(at: mountPoint, withIntermediateDirectories: true)
        let m = try Support.run("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mountPoint.path])
        try #require(m.status == 0, "cannot mount a small tmpfs: \(m.stderr)")
        defer { _ = try? Support.run("umount", [mountPoint.path]) }
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let r = try Support.coursepack("transcode", sample, "-o", mountPoint.appendingPathComponent("c1/pkg").path)
        #expect(r.status == 73, "status \(r.status): \(r.stderr)")
        #expect(r.stderr.contains("disk full (no space left on device)"), "\(r.stderr)")
        // Named where the write met it, by the path it would have been published at.
        #expect(r.stderr.hasPrefix("coursepack: \(mountPoint.path)/c1/pkg"), "\(r.stderr)")
        #expect(!r.stderr.contains(".partial-"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: mountPoint.appendingPathComponent("c1").path)) ?? []
        #expect(left.isEmpty, "\(left)")
    }

    @Test func zeroByteFile() throws {
        let f = try Support.scratch().appendingPathComponent("empty.mp4")
        try Data().write(to: f)
        try expectRefused(f.path, code: 65, reason: "empty")
    }

    @Test func randomBytes() throws {
        let f = try Support.scratch().appendingPathComponent("noise.mp4")
        try Data((0..<100_000).map { _ in UInt8.random(in: 0...255) }).write(to: f)
        try expectRefused(f.path, code: 65, reason: "not a supported media file")
    }

    @Test func textFileNamedMP4() throws {
        let f = try Support.scratch().appendingPathComponent("notes.mp4")
        try "These are my lecture notes, not a video.\n".write(to: f, atomically: true, encoding: .utf8)
        try expectRefused(f.path, code: 65, reason: "not a supported media file")
    }

    @Test func playlistNamedMP4PointingAtALocalFileIsRefused() throws {
        // A real, playable local file that the playlist tries to pull in.
        let target = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        let ts = try Support.fixture("target.ts", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        for (name, reason, text) in [
            ("hls.mp4", "not allowed", "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:7,\nfile://\(ts)\n#EXTINF:7,\n\(ts)\n#EXT-X-ENDLIST\n"),
            ("concat.mp4", "not allowed", "ffconcat version 1.0\nfile '\(target)'\n"),
            ("dash.mp4", "not a supported media file", "<?xml version=\"1.0\"?><MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\"><Period><AdaptationSet><Representation><BaseURL>\(target)</BaseURL></Representation></AdaptationSet></Period></MPD>\n"),
        ] {
            let f = try Support.scratch().appendingPathComponent(name)
            try text.write(to: f, atomically: true, encoding: .utf8)
            try expectRefused(f.path, code: 65, reason: reason)
        }
    }

    @Test func truncatedMP4() throws {
        let full = try Support.fixture("for-truncation.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=6", "-f", "lavfi", "-i", "sine=d=6", "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        // Index at the end (the muxer's default): the cut removes the index.
        let data = try Data(contentsOf: URL(fileURLWithPath: full))
        let f = try Support.scratch().appendingPathComponent("cut.mp4")
        try data.prefix(data.count / 2).write(to: f)
        try expectRefused(f.path, code: 65, reason: "moov atom not found")
        // Index first (fast start): the index survives and promises media the file no longer holds.
        let faststart = try Support.scratch().appendingPathComponent("faststart.mp4")
        let r = try Support.run("ffmpeg", ["-v", "error", "-y", "-i", full, "-c", "copy", "-movflags", "+faststart", faststart.path])
        #expect(r.status == 0)
        let fs = try Data(contentsOf: faststart)
        let g = try Support.scratch().appendingPathComponent("cut-faststart.mp4")
        try fs.prefix(fs.count / 2).write(to: g)
        try expectRefused(g.path, code: 65, reason: "file is truncated")
    }

    @Test func fileWithNoDecodableStream() throws {
        let sub = try Support.scratch().appendingPathComponent("subs.srt")
        try "1\n00:00:00,000 --> 00:00:02,000\nHello\n".write(to: sub, atomically: true, encoding: .utf8)
        let mkv = try Support.scratch().appendingPathComponent("subtitles-only.mkv")
        let r = try Support.run("ffmpeg", ["-v", "error", "-y", "-i", sub.path, "-c:s", "srt", mkv.path])
        #expect(r.status == 0)
        try expectRefused(mkv.path, code: 65, reason: "no video or audio stream")
    }

    @Test func missingPath() throws {
        try expectRefused("/nonexistent/lecture-\(UUID().uuidString).mp4", code: 65, reason: "no such file")
    }

    @Test func unwritableOutputFolder() throws {
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        // The parent of the output is a regular file, so nothing can be created there (even as root).
        let blocker = try Support.scratch().appendingPathComponent("not-a-folder")
        try "x".write(to: blocker, atomically: true, encoding: .utf8)
        let out = blocker.appendingPathComponent("pkg")
        let r = try Support.run(Support.binary, ["transcode", src, "-o", out.path])
        #expect(r.status == 73, "exit \(r.status): \(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(r.stderr.contains(blocker.path))
    }

    @Test func limitsRefuseBeforeDecoding() throws {
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        try expectRefused(src, code: 65, reason: "exceeds the limit of 5 s", extra: ["--max-duration", "5"])
        try expectRefused(src, code: 65, reason: "exceeds the limit of 300 pixels", extra: ["--max-long-side", "300"])
    }

    @Test func badPresetNamesTheField() throws {
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        let dir = try Support.scratch()
        let preset = dir.appendingPathComponent("bad.json")
        try #"{"name":"x","segmentSeconds":6,"keyframeSeconds":2,"x264Preset":"veryfast","rungs":[{"name":"v1","height":"tall","crf":23,"maxKbps":100,"audio":"a"}],"audio":[{"name":"a","kbps":48,"channels":1,"audioOnly":true}]}"#
            .write(to: preset, atomically: true, encoding: .utf8)
        let r = try Support.run(Support.binary, ["transcode", src, "-o", dir.appendingPathComponent("pkg").path, "--preset", preset.path])
        #expect(r.status == 64)
        #expect(r.stderr.contains("rungs[0].height"), "\(r.stderr)")
        let r2 = try Support.run(Support.binary, ["transcode", src, "-o", dir.appendingPathComponent("pkg").path, "--preset", "no-such-preset"])
        #expect(r2.status == 64)
        #expect(r2.stderr.contains("no such preset"))
    }

    @Test func anX264OptionTheEncoderRefusesIsABadPreset() throws {
        // libx264 opens without an x264-params option it cannot parse and only warns: the run must
        // stop with that option named (exit 64, a bad preset), not encode without it.
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        for (params, named) in [("trellis=1:subme=1:nonsense=1", "nonsense = 1"), ("me=nosuchsearch", "me = nosuchsearch")] {
            let dir = try Support.scratch()
            let preset = dir.appendingPathComponent("bad.json")
            try #"{"name":"x","segmentSeconds":6,"keyframeSeconds":2,"x264Preset":"veryfast","rungs":[{"name":"v1","height":240,"crf":23,"maxKbps":100,"audio":"a","x264Params":"\#(params)"}],"audio":[{"name":"a","kbps":48,"channels":1,"audioOnly":true}]}"#
                .write(to: preset, atomically: true, encoding: .utf8)
            try expectRefused(src, code: 64, reason: named, output: dir.appendingPathComponent("pkg"), extra: ["--preset", preset.path])
        }
    }

    @Test func usageErrorsExit64() throws {
        let r = try Support.run(Support.binary, ["transcode"])
        #expect(r.status == 64)
    }

    @Test func interruptLeavesNoOutput() throws {
        let long = try Support.fixture("long-720p.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=120", "-f", "lavfi", "-i", "sine=d=120",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        let log = out.deletingLastPathComponent().appendingPathComponent("stderr.txt")
        let p = try Child(Support.binary, ["transcode", long, "-o", out.path], stderr: .file(log))
        Thread.sleep(forTimeInterval: 2)
        #expect(p.isRunning)
        p.send(SIGINT)
        p.wait()
        let stderr = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        #expect(p.status == 75, "exit \(p.status): \(stderr)")
        #expect(stderr.contains("interrupted"))
        #expect(!FileManager.default.fileExists(atPath: out.path))
        #expect(Support.leftovers(beside: out).isEmpty)
    }

    @Test func deadlineStopsTheRun() throws {
        let long = try Support.fixture("long-720p.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30:d=120", "-f", "lavfi", "-i", "sine=d=120",
            "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"])
        try expectRefused(long, code: 75, reason: "deadline exceeded", extra: ["--timeout", "1.5"])
    }
}
