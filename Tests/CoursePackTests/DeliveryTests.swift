import Foundation
import Testing

/// Delivery as learners meet it: packages served by nginx (Tests/browser/testbed.py: a network
/// namespace of the test's own, nginx with its default static-file headers, a delayed and
/// rate-limited loopback link) and played by real players (Tests/browser/delivery.py).
///
/// The tests are split over two serialized suites (this one and `MoreDeliveryTests`), which run
/// beside each other: players play in real time, and in one suite they were the test run's longest
/// chain (407 s of a 407-s run; the next suite ended at 305 s). Alone, three odd sources take about
/// 125 s, the fourth and the audio-only lecture about 135 s.
@Suite(.serialized, .blockingThreads) struct DeliveryTests {
    static let delivery = Support.repoRoot.appendingPathComponent("Tests/browser/delivery.py").path

    /// One run of `player` on `master` of `package` through the testbed; the player's JSON.
    static func play(_ package: URL, _ player: String, master: String = "master.m3u8", kbps: Int = 100_000, rtt: Int = 20,
                     seconds: Int = 60, expectEnd: Bool = true, switchEvery: Double? = nil) throws -> (ok: Bool, json: [String: Any], raw: String) {
        var args = [delivery, package.path, "--player", player, "--master", master, "--kbps", "\(kbps)", "--rtt", "\(rtt)",
                    "--seconds", "\(seconds)"]
        if expectEnd { args += ["--expect-end", "--max-stalled", "0.5"] }
        if let switchEvery { args += ["--switch-every", "\(switchEvery)"] }
        let r = try Support.run("python3", args, timeout: Double(seconds + 180))
        let line = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        let json = (try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]) ?? [:]
        let brief = ["ok", "first_frame", "played", "duration", "stalled", "stalls", "sizes", "error", "ended"]
            .map { "\($0)=\(json[$0] ?? "nil")" }.joined(separator: " ")
        return (r.status == 0, json, brief + " " + r.stderr.suffix(800))
    }

    /// Presentation time of the first video packet of each of the first `count` segments of a
    /// rendition (an outside view of where each segment starts).
    static func segmentStarts(_ rendition: URL, count: Int) throws -> [Double] {
        let probe = PackageProbe(dir: rendition)
        return try (0..<min(count, probe.segments("index.m3u8").entries.count)).map { i in
            try #require(probe.videoPacketTimes("index.m3u8", i, firstOnly: true).first, "no video packet in segment \(i) of \(rendition.lastPathComponent)")
        }
    }

    /// Sources whose frame timing used to split the rungs' segment boundaries apart: 10-bit HEVC at
    /// 24 fps, 25 fps Matroska with a 1.3-s start offset, a variable-rate clip with 0.8-s gaps, and
    /// 29.97 fps.
    static let oddSources: [(String, [String])] = [
        ("hevc10-24fps.mp4", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=24:d=8", "-f", "lavfi", "-i", "sine=f=440:d=8",
                              "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-c:a", "aac", "-shortest"]),
        ("offset-25fps.mkv", ["-f", "lavfi", "-i", "testsrc2=s=683x383:r=25:d=14", "-f", "lavfi", "-i", "sine=f=300:d=14",
                              "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "libopus", "-output_ts_offset", "1.3", "-shortest"]),
        ("vfr-gaps.mp4", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=30:d=14", "-f", "lavfi", "-i", "sine=f=500:d=14",
                          "-vf", "select='not(between(mod(t,3),0.8,1.6))',setpts='PTS+0.01*sin(N)/TB'", "-fps_mode", "vfr",
                          "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"]),
        ("ntsc-2997.mp4", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=30000/1001:d=14", "-f", "lavfi", "-i", "sine=f=600:d=14",
                           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-shortest"]),
    ]

    @Test(arguments: 0..<3) func oddSourcesStartEverySegmentTogetherAndPlayThroughSwitches(_ index: Int) throws {
        try Self.oddSourcePlaysThroughSwitches(index)
    }

    /// An odd source's package: every rung's segment k starts on the same picture (ffprobe, `validate`,
    /// the outside checker), and Chromium plays it through a switch of variant at every boundary.
    static func oddSourcePlaysThroughSwitches(_ index: Int) throws {
        let (name, args) = Self.oddSources[index]
        let src = try Support.fixture(name, args)
        let pkg = try Support.scratch("odd-\(index)").appendingPathComponent("pkg")
        let t = try Support.coursepack("transcode", src, "-o", pkg.path, "--preset", "lecture", "--renditions-only")
        try #require(t.status == 0, "\(t.stderr)")
        let rungs = try FileManager.default.contentsOfDirectory(atPath: pkg.path).filter { $0.hasPrefix("v") }.sorted()
        try #require(rungs.count >= 3 && rungs.contains("v216"), "\(rungs)")
        // Every rung's segment k starts on the same picture, to the millisecond (ffprobe's view),
        // whatever the rung's frame rate (the 216p rung runs at 10 fps).
        var starts: [String: [Double]] = [:]
        for r in rungs { starts[r] = try Self.segmentStarts(pkg.appendingPathComponent(r), count: 4) }
        let ref = try #require(starts["v216"])
        for (r, s) in starts {
            #expect(s.count == ref.count && zip(s, ref).allSatisfy { abs($0 - $1) <= 0.001 }, "\(name) \(r): \(s) vs v216 \(ref)")
        }
        // A rung with a frame-rate cap (FRAME-RATE below the source's) never shows two pictures less
        // than three quarters of its interval apart, after a gap in the source either.
        for (uri, attributes) in try PackageProbe(dir: pkg).variants() where attributes.contains("RESOLUTION=") {
            guard let fps = attributes.split(separator: ",").first(where: { $0.hasPrefix("FRAME-RATE=") }).flatMap({ Double($0.dropFirst(11)) }),
                  fps < 20 else { continue }
            let probe = PackageProbe(dir: pkg)
            let times = try (0..<probe.segments(uri).entries.count).flatMap { try probe.videoPacketTimes(uri, $0) }.sorted()
            let closest = zip(times, times.dropFirst()).map { $1 - $0 }.min() ?? .infinity
            #expect(times.count > 10 && closest >= 0.75 / fps - 0.001, "\(name) \(uri) at \(fps) fps: pictures \(closest) s apart")
        }
        // validate checks the same by tfdt, and EXTINF; the outside checker agrees.
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 0, "\(v.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") })")
        let check = try Support.run("python3", [WeakLinkTests.hlsCheck, pkg.path, "--source", src])
        #expect(check.status == 0, "hls_check: \(check.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") })")
        // Chromium plays a playlist that switches variant at every segment boundary (highest, lowest,
        // next highest, ...) to the end, served by nginx, without a stall.
        let run = try Self.play(pkg, "chromium", master: "zigzag", seconds: 40)
        #expect(run.ok, "\(name): \(run.raw)")
        let sizes = run.json["sizes"] as? [String] ?? []
        #expect(Set(sizes).count >= 3, "\(name): pictures shown \(sizes)")
        // And the full master, with Chromium's own switches forced every 1.5 s (the element resized
        // between 192x108 and 1280x720: it never picks a variant larger than the element).
        let forced = try Self.play(pkg, "chromium", seconds: 40, switchEvery: 1.5)
        #expect(forced.ok, "\(name) master.m3u8 with forced switches: \(forced.raw)")
        let renditions = Set((forced.json["served"] as? [[Any]] ?? []).compactMap { ($0.last as? String)?.split(separator: "/").first }
            .filter { $0.hasPrefix("v") })
        #expect(renditions.count >= 2, "\(name): segments fetched from \(renditions.sorted()) only")
    }

    @Test func nginxServesWithItsDefaultHeaders() throws {
        // The testbed is what the delivery figures rest on: nginx with Last-Modified and ETag, and
        // Cache-Control only in its CDN configuration.
        let script = """
        import sys, json
        sys.path.insert(0, sys.argv[1])
        from testbed import Testbed
        out = {}
        for cacheable in (False, True):
            with Testbed(4000, 40, cacheable=cacheable) as tb:
                tb.add_file("p/x.m3u8", "#EXTM3U\\n")
                r = tb.run(["curl", "-s", "-D", "-", "-o", "/dev/null", tb.url("p/x.m3u8")])
                out[str(cacheable)] = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in r.stdout.splitlines() if ":" in l}
                out[str(cacheable)]["namespace"] = tb.ns
        print(json.dumps(out))
        """
        let r = try Support.run("python3", ["-c", script, Support.repoRoot.appendingPathComponent("Tests/browser").path])
        try #require(r.status == 0, "\(r.stderr)")
        let j = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [String: String]])
        for (cacheable, h) in j {
            #expect(h["server"]?.hasPrefix("nginx") == true, "\(h)")
            #expect(h["last-modified"] != nil && h["etag"] != nil, "\(h)")
            #expect(h["content-type"] == "application/vnd.apple.mpegurl", "\(h)")
            #expect((h["cache-control"] == "public, max-age=3600") == (cacheable == "True"), "\(h)")
        }
        // The namespaces are gone.
        let ns = try Support.run("ip", ["netns", "list"])
        for (_, h) in j { #expect(!ns.stdout.contains(h["namespace"] ?? "?"), "\(ns.stdout)") }
    }
}

/// The rest of the delivery tests (see `DeliveryTests`).
@Suite(.serialized, .blockingThreads) struct MoreDeliveryTests {
    @Test(arguments: 3..<4) func oddSourcesStartEverySegmentTogetherAndPlayThroughSwitches(_ index: Int) throws {
        try DeliveryTests.oddSourcePlaysThroughSwitches(index)
    }

    @Test func audioOnlyLecturePlaysFromEveryMaster() throws {
        // 10 s: a 6-s and a 4-s segment (no lead segments under two full ones), played to the end six times.
        let src = try Support.fixture("lecture-audio-10s.mp3", ["-f", "lavfi", "-i", "sine=f=440:d=10", "-c:a", "libmp3lame", "-b:a", "64k"])
        let pkg = try Support.scratch().appendingPathComponent("pkg")
        let t = try Support.coursepack("transcode", src, "-o", pkg.path)
        try #require(t.status == 0, "\(t.stderr)")
        let lecture = try JSONSerialization.jsonObject(with: Data(contentsOf: pkg.appendingPathComponent("lecture.json"))) as? [String: Any]
        let masters = (lecture?["masters"] as? [[String: Any]] ?? []).compactMap { $0["playlist"] as? String }
        #expect(masters == ["master.m3u8", "lite.m3u8", "min.m3u8", "opus.m3u8"], "\(masters)")
        for m in masters {
            let run = try DeliveryTests.play(pkg, "chromium", master: m, kbps: 2000, rtt: 100, seconds: 40)
            #expect(run.ok, "\(m): \(run.raw)")
        }
        // The AAC masters in GStreamer too.
        for m in ["master.m3u8", "min.m3u8"] {
            let run = try DeliveryTests.play(pkg, "playbin3", master: m, kbps: 2000, rtt: 100, seconds: 40)
            #expect(run.ok, "playbin3 \(m): \(run.raw)")
        }
    }
}
