import Foundation
import Testing

/// End-to-end: real files through the real binary, checked with ffprobe and the package's own files.
@Suite(.serialized, .blockingThreads) struct TranscodeTests {
    /// Transcodes `source` and asserts what every package must hold; returns the package folder.
    @discardableResult
    func transcodeAndCheck(_ source: String, preset: String? = nil, expectVideo: Bool = true,
                           sourceDuration: Double? = nil) throws -> URL {
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", source, "-o", out.path, "--preset", try preset ?? Support.testPreset())
        #expect(r.status == 0, "transcode failed: \(r.stderr)")
        let pkg = PackageProbe(dir: out)
        let variants = try pkg.variants()
        #expect(!variants.isEmpty)
        let duration = try sourceDuration ?? {
            let j = try Support.ffprobe(["-show_entries", "format=duration", source])
            return Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
        }()
        var videoDurations: [[Double]] = []
        for v in variants {
            let s = try pkg.segments(v.uri)
            #expect(!s.entries.isEmpty, "\(v.uri) has no segments")
            let total = s.entries.reduce(0) { $0 + $1.duration }
            #expect(abs(total - duration) <= 0.5, "\(v.uri): \(total) s vs source \(duration) s")
            if v.attributes.contains("RESOLUTION=") {
                videoDurations.append(s.entries.map(\.duration))
                for i in s.entries.indices {
                    let seg = try pkg.probeSegment(v.uri, i)
                    #expect(seg.firstFlags.contains("K"), "\(v.uri) segment \(i) starts with flags \(seg.firstFlags)")
                    #expect(seg.stream["pix_fmt"] as? String == "yuv420p")
                }
            }
        }
        #expect(expectVideo == !videoDurations.isEmpty)
        for d in videoDurations.dropFirst() {
            #expect(d.count == videoDurations[0].count && zip(d, videoDurations[0]).allSatisfy { abs($0 - $1) <= 0.05 },
                    "renditions not aligned: \(d) vs \(videoDurations[0])")
        }
        let v = try Support.coursepack("validate", out.path)
        #expect(v.status == 0, "validate failed: \(v.stdout)")
        // A second real player: GStreamer's playbin plays the package to its end.
        let g = try GStreamer.play(out)
        #expect(g.status == 0, "GStreamer: \(g.stdout) \(g.stderr.suffix(500))")
        let schema = try Support.validateLectureJSON(out)
        #expect(schema.status == 0, "lecture.json does not match its schema: \(schema.stderr.suffix(800))")
        #expect(Support.leftovers(beside: out).isEmpty)
        return out
    }

    /// Width and height ffprobe sees in a rendition's first segment.
    func size(_ pkg: URL, _ playlist: String) throws -> (Int, Int) {
        let s = try PackageProbe(dir: pkg).probeSegment(playlist, 0).stream
        return (s["width"] as? Int ?? 0, s["height"] as? Int ?? 0)
    }

    @Test func sampleLectureWithDefaultPreset() throws {
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let pkg = try transcodeAndCheck(sample, preset: "lecture")
        let variants = try PackageProbe(dir: pkg).variants()
        let resolutions = variants.compactMap { v in
            v.attributes.range(of: #"RESOLUTION=\d+x\d+"#, options: .regularExpression).map { String(v.attributes[$0]) }
        }
        #expect(resolutions.count == Set(resolutions).count)
        // 720p source: 720 down to 144, never 1080.
        #expect(Set(resolutions) == ["RESOLUTION=1280x720", "RESOLUTION=854x480", "RESOLUTION=640x360", "RESOLUTION=426x240", "RESOLUTION=384x216"])
        // A weak-link variant and an audio-only variant.
        let bandwidths = variants.filter { $0.attributes.contains("RESOLUTION") }.compactMap { v -> Int? in
            v.attributes.range(of: #"BANDWIDTH=\d+"#, options: .regularExpression).flatMap { Int(v.attributes[$0].dropFirst(10)) }
        }
        #expect(bandwidths.contains { $0 <= 192_000 })
        #expect(variants.contains { !$0.attributes.contains("RESOLUTION") && $0.attributes.contains("mp4a.40.2") })
        let master = try String(contentsOf: pkg.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(master.components(separatedBy: "#EXT-X-I-FRAME-STREAM-INF").count - 1 == 5)
        // video.js 7.5 (mux.js before its issue 223 was fixed) walks each segment's mdat as the first track's NAL units to find caption
        // SEIs and throws when the walk reads one outside every picture: it must stop at the end of
        // the pictures in every segment with the sound muxed in.
        var walked = 0
        for v in variants where v.attributes.contains("RESOLUTION=") && v.attributes.contains("mp4a") {
            let dir = pkg.appendingPathComponent(v.uri).deletingLastPathComponent()
            for name in try FileManager.default.contentsOfDirectory(atPath: dir.path) where name.hasSuffix(".m4s") {
                let w = try Self.captionWalk([UInt8](Data(contentsOf: dir.appendingPathComponent(name))))
                #expect(w.tracks >= 2, "\(v.uri) \(name): \(w.tracks) tracks")
                #expect(w.seiOutsidePictures.isEmpty, "\(v.uri) \(name): the NAL walk reads SEI at \(w.seiOutsidePictures) past the pictures")
                #expect(w.stoppedAtPicturesEnd, "\(v.uri) \(name): the NAL walk goes on past the pictures")
                // Whatever the sound's bytes: the step after the pictures reads no byte of a sample.
                #expect(w.soundStart >= w.pictures + 5, "\(v.uri) \(name): sound at \(w.soundStart), pictures end at \(w.pictures)")
                walked += 1
            }
        }
        #expect(walked >= 10)
        // The outside checker agrees.
        let check = try Support.run("python3", [Support.repoRoot.deletingLastPathComponent().appendingPathComponent("shared/tools/hls_check.py").path,
                                                pkg.path, "--source", sample])
        #expect(check.status == 0, "hls_check: \(check.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") }) \(check.stderr.suffix(300))")
        #expect(check.stdout.contains(" passed, 0 failed"), "hls_check did not report: \(check.stdout.suffix(300))")
    }

    /// The walk the caption parser of video.js 7.5.5 (VHS 1.9.3) makes over a media segment: the first
    /// traf's mdat read from its start as 4-byte-length NAL units. Returns how many trafs the moof
    /// has, the offsets (in the mdat) of SEI NAL headers the walk reads past the first traf's
    /// samples, whether the walk's last step starts exactly where those samples end (`pictures`), and
    /// where the next traf's samples start (offsets in the mdat's payload).
    static func captionWalk(_ b: [UInt8]) throws -> (tracks: Int, seiOutsidePictures: [Int], stoppedAtPicturesEnd: Bool,
                                                     pictures: Int, soundStart: Int) {
        func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        func children(_ from: Int, _ to: Int) -> [(type: String, payload: Int, end: Int)] {
            var out: [(String, Int, Int)] = [], i = from
            while i + 8 <= to { let n = be32(i); guard n >= 8 else { break }
                out.append((String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self), i + 8, i + n)); i += n }
            return out
        }
        let top = children(0, b.count)
        let moof = try #require(top.first { $0.type == "moof" }), mdat = try #require(top.first { $0.type == "mdat" })
        let trafs = children(moof.payload, moof.end).filter { $0.type == "traf" }
        let first = try #require(trafs.first)
        let trun = try #require(children(first.payload, first.end).first { $0.type == "trun" })
        let flags = be32(trun.payload) & 0xFFFFFF, count = be32(trun.payload + 4)
        var q = trun.payload + 8 + (flags & 1 != 0 ? 4 : 0) + (flags & 4 != 0 ? 4 : 0)
        let fields = [0x100, 0x200, 0x400, 0x800].filter { flags & $0 != 0 }.count
        var pictures = 0
        for _ in 0..<count { pictures += be32(q + (flags & 0x100 != 0 ? 4 : 0)); q += fields * 4 }
        let data = Array(b[mdat.payload..<mdat.end])
        var i = 0, sei: [Int] = [], lastStep = 0
        while i + 4 < data.count {
            lastStep = i
            let length = Int(UInt32(data[i]) << 24 | UInt32(data[i + 1]) << 16 | UInt32(data[i + 2]) << 8 | UInt32(data[i + 3]))
            i += 4
            if length <= 0 { continue }
            if i < data.count, data[i] & 0x1F == 6, i >= pictures { sei.append(i) }
            i += length
        }
        var soundStart = Int.max
        if trafs.count > 1, let run = children(trafs[1].payload, trafs[1].end).first(where: { $0.type == "trun" }), be32(run.payload) & 1 != 0 {
            soundStart = moof.payload - 8 + Int(Int32(truncatingIfNeeded: be32(run.payload + 8))) - mdat.payload
        }
        return (trafs.count, sei, lastStep == pictures, pictures, soundStart)
    }

    @Test func rotatedPhoneVideoComesOutUpright() throws {
        // Upright portrait picture: white top half, black bottom half. Stored turned a quarter to the
        // left, with a display matrix saying "turn 90 degrees clockwise to show".
        let stored = try Support.fixture("rot-stored.mp4", [
            "-f", "lavfi", "-i", "color=white:s=180x160:r=30:d=7[t];color=black:s=180x160:r=30:d=7[b];[t][b]vstack",
            "-f", "lavfi", "-i", "sine=d=7", "-vf", "transpose=cclock", "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let rotated = Support.fixtureDir.appendingPathComponent("rot-90.mp4")
        if !FileManager.default.fileExists(atPath: rotated.path) {
            var data = try Data(contentsOf: URL(fileURLWithPath: stored))
            let tkhd = data.range(of: Data("tkhd".utf8))!.lowerBound - 4
            var matrix = Data()
            for v: Int32 in [0, 0x10000, 0, -0x10000, 0, 0, 160 << 16, 0, 0x4000_0000] {
                withUnsafeBytes(of: v.bigEndian) { matrix.append(contentsOf: $0) }
            }
            data.replaceSubrange((tkhd + 48)..<(tkhd + 84), with: matrix)
            try data.write(to: rotated)
        }
        let probe = try Support.ffprobe(["-select_streams", "v:0", "-show_streams", rotated.path])
        let side = ((probe["streams"] as? [[String: Any]])?.first?["side_data_list"] as? [[String: Any]]) ?? []
        #expect(side.contains { ($0["rotation"] as? Int) == -90 }, "fixture lacks its display matrix")

        let pkg = try transcodeAndCheck(rotated.path)
        let (w, h) = try size(pkg, "v144/index.m3u8")
        #expect(h > w, "rendition is \(w)x\(h), expected portrait")
        // Decode the first picture as grey bytes and compare the top and bottom halves.
        let raw = try rawGray(pkg.appendingPathComponent("v144/index.m3u8").path)
        #expect(raw.count == w * h)
        let top = raw.prefix(w * h / 2 - w * 8).reduce(0) { $0 + Int($1) } / (w * h / 2 - w * 8)
        let bottom = raw.suffix(w * h / 2 - w * 8).reduce(0) { $0 + Int($1) } / (w * h / 2 - w * 8)
        #expect(top > 200 && bottom < 50, "top mean \(top), bottom mean \(bottom)")
    }

    func rawGray(_ input: String) throws -> [UInt8] {
        let tmp = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("frame-\(UUID().uuidString).gray")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let r = try Support.run("ffmpeg", ["-v", "error", "-i", input, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", tmp.path])
        #expect(r.status == 0, "\(r.stderr)")
        return [UInt8](try Data(contentsOf: tmp))
    }

    @Test func smallSourceIsNeverUpscaled() throws {
        let src = try Support.fixture("small-200x150.mkv", [
            "-f", "lavfi", "-i", "testsrc2=s=200x150:r=25:d=7", "-f", "lavfi", "-i", "sine=d=7",
            "-c:v", "libx264", "-c:a", "libopus", "-shortest"])
        let pkg = try transcodeAndCheck(src, preset: "lecture")
        let variants = try PackageProbe(dir: pkg).variants().filter { $0.attributes.contains("RESOLUTION") }
        for v in variants {
            let (w, h) = try size(pkg, v.uri)
            #expect(w <= 200 && h <= 150, "\(v.uri) is \(w)x\(h)")
        }
        #expect(variants.count == 1)  // only 144p fits a 150-line source
    }

    /// A still screen: a picture equal to the one before it is not scaled again, each scaled rung
    /// takes its last picture instead (the debug log counts them), and what the rungs show is still
    /// every picture of the source in its place: each frame of the 360p rung against the source
    /// frame at its time, scaled by FFmpeg, by PSNR. (A rung showing the picture before, one frame
    /// in three, scores some 10 dB less on those frames.)
    @Test func repeatedPicturesAreScaledOnce() throws {
        // Ten pictures a second, each held three frames at 30 fps, losslessly coded so that the
        // three decode equal.
        let src = try Support.fixture("held-10of30-480p.mkv", [
            "-f", "lavfi", "-i", "testsrc2=s=854x480:r=10:d=6", "-vf", "fps=30", "-c:v", "libx264", "-preset", "ultrafast",
            "-qp", "0"])
        let pkg = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src, "-o", pkg.path, "--renditions-only", "--verbose")
        try #require(r.status == 0, "\(r.stderr)")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.contains("scaled pictures reused") }, "\(r.stderr)")
        #expect(line.contains("pictures: 60 different of 180"), "\(line)")
        // v480 is the source's own size (no scaling); the rungs below are scaled, 360p at 30 fps.
        let reused = Dictionary(uniqueKeysWithValues: line.split(separator: ":").last!.split(separator: ",").compactMap { item -> (String, Int)? in
            let words = item.split(separator: " ")
            return words.count == 2 ? (String(words[0]), Int(words[1]) ?? -1) : nil
        })
        #expect(reused["v480"] == 0 && (reused["v360"] ?? 0) >= 110, "\(line)")
        let stats = try Support.scratch().appendingPathComponent("psnr.log")
        let p = try Support.run("ffmpeg", ["-v", "error", "-i", pkg.appendingPathComponent("v360/index.m3u8").path, "-i", src,
                                           "-lavfi", "[0:v]setpts=PTS-STARTPTS[d];[1:v]setpts=PTS-STARTPTS,scale=640:360:flags=lanczos[r];"
                                               + "[d][r]psnr=stats_file=\(stats.path)", "-f", "null", "-"])
        try #require(p.status == 0, "\(p.stderr)")
        let frames = try String(contentsOf: stats, encoding: .utf8).split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("psnr_avg:") }.flatMap { Double($0.dropFirst("psnr_avg:".count)) }
        }
        #expect(frames.count >= 170, "\(frames.count) frames compared")
        let sorted = frames.sorted()
        let median = sorted[sorted.count / 2]
        #expect(sorted.first! > median - 5, "worst frame \(sorted.first!) dB, median \(median) dB")
    }

    /// A picture that changed only in part (a small moving picture over a still one, as a speaker
    /// inset over a slide) is scaled again only where it changed, in each scaled rung, down the chain
    /// of rungs scaled from one another and in those whose frame-rate cap drops pictures; and every
    /// frame of those rungs still shows the source picture of its time whole: against the source frame
    /// of the same time, scaled by libswscale, no frame's PSNR falls more than 5 dB below the rung's
    /// median. (A rung that missed a change, and kept an old part of the picture, scores 10-20 dB less
    /// on that frame.)
    @Test func picturesChangedInPartAreScaledAgainOnlyThere() throws {
        // Lossless, so that the still part of each frame decodes equal.
        let src = try Support.fixture("moving-inset-480p.mkv", [
            "-f", "lavfi", "-i", "smptebars=s=854x480:r=30:d=6", "-f", "lavfi", "-i", "testsrc2=s=112x96:r=30:d=6",
            "-filter_complex", "[0:v][1:v]overlay=x='mod(t*397,742)':y='mod(t*233,384)',format=yuv420p",
            "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"])
        let pkg = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src, "-o", pkg.path, "--renditions-only", "--verbose")
        try #require(r.status == 0, "\(r.stderr)")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.contains("pictures resized by zimg") }, "\(r.stderr)")
        // "v360 180 of 180 (150 only where they changed), ...": the count before "only where".
        func partly(_ rung: String) -> Int {
            guard let item = line.split(separator: ",").first(where: { $0.contains(rung + " ") }),
                  let open = item.firstIndex(of: "(") else { return -1 }
            return Int(item[item.index(after: open)...].split(separator: " ").first ?? "") ?? -1
        }
        // v480 is the source's size; v360 is scaled from it at 30 fps, v240 from v360 at 15 fps.
        #expect(partly("v360") >= 120 && partly("v240") >= 45, "\(line)")
        for rung in ["v360", "v240", "v216"] {
            let dir = pkg.appendingPathComponent(rung)
            let segments = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".m4s") }.sorted()
            var joined = try Data(contentsOf: dir.appendingPathComponent("init.mp4"))
            for s in segments { joined.append(try Data(contentsOf: dir.appendingPathComponent(s))) }
            let file = try Support.scratch().appendingPathComponent("\(rung).mp4")
            try joined.write(to: file)
            let psnr = try FFmpegWrapperTests.psnrAgainstSource(rendition: file.path, source: src)
            #expect(psnr.count >= (rung == "v360" ? 170 : rung == "v240" ? 85 : 55) && psnr.allSatisfy { $0 != nil },
                    "\(rung): \(psnr.count) frames, \(psnr.filter { $0 == nil }.count) without a source frame of their time")
            let sorted = psnr.compactMap { $0 }.sorted()
            guard let worst = sorted.first else { continue }
            let median = sorted[sorted.count / 2]
            #expect(worst > median - 5, "\(rung): worst frame \(worst) dB, median \(median) dB")
        }
    }

    @Test func variableFrameRateWithLateStart() throws {
        let src = try Support.fixture("vfr-offset.ts", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=9", "-f", "lavfi", "-i", "sine=d=9",
            "-vf", "setpts='PTS+0.011*sin(N)/TB',select='not(eq(mod(n,7),3))'", "-fps_mode", "vfr",
            "-output_ts_offset", "30", "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let probe = try Support.ffprobe(["-show_entries", "format=start_time,duration", src])
        let start = Double((probe["format"] as? [String: Any])?["start_time"] as? String ?? "") ?? 0
        #expect(start > 29)
        try transcodeAndCheck(src)
    }

    @Test func nonSquarePixelsKeepDisplayAspect() throws {
        // 4:3 storage with 16:9 display via SAR 4:3, and odd dimensions (FFV1 allows them).
        let src = try Support.fixture("sar-odd.mkv", [
            "-f", "lavfi", "-i", "testsrc2=s=321x241:r=25:d=7", "-vf", "setsar=4/3", "-c:v", "ffv1", "-pix_fmt", "yuv420p"])
        let pkg = try transcodeAndCheck(src)
        let (w, h) = try size(pkg, "v144/index.m3u8")
        #expect(w % 2 == 0 && h % 2 == 0)
        let display = 321.0 * 4 / 3 / 241
        #expect(abs(Double(w) / Double(h) - display) / display < 0.02, "\(w)x\(h) vs display aspect \(display)")
        #expect(w <= 321 && h <= 241)
    }

    @Test func interlacedSourceIsDeinterlaced() throws {
        let src = try Support.fixture("interlaced.ts", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=7", "-f", "lavfi", "-i", "sine=d=7",
            "-vf", "tinterlace=interleave_top,setfield=tff", "-flags", "+ildct+ilme", "-c:v", "libx264", "-c:a", "mp2", "-shortest"])
        let p = try Support.coursepack("probe", src, "--json")
        let info = try JSONSerialization.jsonObject(with: Data(p.stdout.utf8)) as? [String: Any]
        #expect((info?["video"] as? [String: Any])?["fieldOrder"] as? String == "tff")
        let pkg = try transcodeAndCheck(src)
        let s = try PackageProbe(dir: pkg).probeSegment("v240/index.m3u8", 0).stream
        #expect((s["field_order"] as? String ?? "progressive") == "progressive")
    }

    /// libavfilter and its dependencies are not linked (11 MB of resident memory in every run); the
    /// pass loads the library for a source that needs a filter graph, and only then. The dynamic
    /// loader's own log (`LD_DEBUG=files`) says which libraries each run loaded.
    @Test func libavfilterIsLoadedOnlyForASourceThatNeedsIt() throws {
        let ldd = try Support.run("/usr/bin/ldd", [Support.binary])
        #expect(ldd.status == 0, "ldd: \(ldd.stderr)")
        #expect(!ldd.stdout.contains("libavfilter"), "coursepack links libavfilter:\n\(ldd.stdout)")
        let progressive = try Support.fixture("progressive-short.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=3", "-f", "lavfi", "-i", "sine=d=3",
            "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let interlaced = try Support.fixture("interlaced-short.ts", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=3", "-f", "lavfi", "-i", "sine=d=3",
            "-vf", "tinterlace=interleave_top,setfield=tff", "-flags", "+ildct+ilme", "-c:v", "libx264", "-c:a", "mp2", "-shortest"])
        for (source, needsFilter) in [(progressive, false), (interlaced, true)] {
            let dir = try Support.scratch()
            defer { try? FileManager.default.removeItem(at: dir) }
            let log = dir.appendingPathComponent("ld")
            let r = try Support.run(Support.binary, ["transcode", source, "-o", dir.appendingPathComponent("pkg").path,
                                                     "--preset", try Support.testPreset(), "--renditions-only"],
                                    environment: ["LD_DEBUG": "files", "LD_DEBUG_OUTPUT": log.path])
            #expect(r.status == 0, "transcode \(source): \(r.stderr)")
            let logs = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("ld.") }
            #expect(!logs.isEmpty, "the dynamic loader wrote no log for \(source)")
            let loaded = try logs.map { try String(contentsOf: dir.appendingPathComponent($0), encoding: .utf8) }.joined()
            #expect(loaded.contains("file=libavfilter.so") == needsFilter,
                    "\(source): libavfilter \(needsFilter ? "not loaded" : "loaded") for a source that \(needsFilter ? "needs" : "needs no") filter")
        }
    }

    /// A machine without libavfilter: a source that needs a filter graph fails with one line that says
    /// so, not a crash. `dlopen` of the library is made to fail by a preloaded stand-in.
    @Test func aMissingLibavfilterIsAnErrorNotACrash() throws {
        let dir = try Support.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let stub = dir.appendingPathComponent("nodl.c"), lib = dir.appendingPathComponent("nodl.so")
        try """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <string.h>
        void *dlopen(const char *name, int flags) {
            static void *(*real)(const char *, int);
            if (!real) real = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
            if (name && strstr(name, "libavfilter")) return NULL;
            return real(name, flags);
        }
        """.write(to: stub, atomically: true, encoding: .utf8)
        let cc = try Support.run("/usr/bin/env", ["clang", "-shared", "-fPIC", stub.path, "-o", lib.path, "-ldl"])
        try #require(cc.status == 0, "building the stand-in: \(cc.stderr)")
        let interlaced = try Support.fixture("interlaced-short.ts", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=50:d=3", "-f", "lavfi", "-i", "sine=d=3",
            "-vf", "tinterlace=interleave_top,setfield=tff", "-flags", "+ildct+ilme", "-c:v", "libx264", "-c:a", "mp2", "-shortest"])
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.run(Support.binary, ["transcode", interlaced, "-o", out.path, "--preset", try Support.testPreset(),
                                                 "--renditions-only"], environment: ["LD_PRELOAD": lib.path])
        #expect(r.status > 0 && r.status < 128, "exit \(r.status)")
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("loading libavfilter") && lines[0].contains("libavfilter.so"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "a package was left behind")
    }

    @Test func tenBitVideoBecomesEightBit420() throws {
        let src = try Support.fixture("tenbit.mkv", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-f", "lavfi", "-i", "sine=d=7",
            "-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-c:a", "flac", "-shortest"])
        let pkg = try transcodeAndCheck(src)
        let s = try PackageProbe(dir: pkg).probeSegment("v240/index.m3u8", 0).stream
        #expect(s["pix_fmt"] as? String == "yuv420p")
        #expect((s["profile"] as? String ?? "").contains("10") == false)
    }

    @Test func videoWithoutAudio() throws {
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        let pkg = try transcodeAndCheck(src)
        let master = try String(contentsOf: pkg.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(!master.contains("mp4a"))
        #expect(!master.contains("TYPE=AUDIO"))
    }

    @Test func audioWithoutVideoMakesAudioOnlyPackage() throws {
        // 5.1 at 44.1 kHz with cover art: the picture is not a video track.
        let src = try Support.fixture("surround-cover.m4a", [
            "-f", "lavfi", "-i", "sine=f=500:d=8", "-f", "lavfi", "-i", "color=red:s=64x64:d=1",
            "-map", "0:a", "-map", "1:v", "-frames:v", "1", "-ac", "6", "-ar", "44100", "-c:a", "aac", "-c:v", "mjpeg",
            "-disposition:v", "attached_pic"])
        let pkg = try transcodeAndCheck(src, expectVideo: false)
        // AAC in master.m3u8 and Opus in opus.m3u8: a master that offered both made Chromium switch
        // from one to the other and fail ("Audio codec changes not allowed").
        func family(_ master: String) throws -> [String] {
            let text = try String(contentsOf: pkg.appendingPathComponent(master), encoding: .utf8)
            return text.split(separator: "\n").filter { $0.hasPrefix("#EXT-X-STREAM-INF:") }
                .map { $0.contains("CODECS=\"mp4a.40.2\"") ? "aac" : $0.contains("CODECS=\"opus\"") ? "opus" : "?" }
        }
        #expect(try family("master.m3u8") == ["aac"])
        #expect(try family("lite.m3u8") == ["aac"])
        #expect(try family("min.m3u8") == ["aac"])
        #expect(try family("opus.m3u8") == ["opus"])
        let j = try Support.ffprobe(["-show_streams", pkg.appendingPathComponent("a48/index.m3u8").path])
        let stream = (j["streams"] as? [[String: Any]])?.first
        #expect(stream?["channels"] as? Int == 1)
        #expect(stream?["profile"] as? String == "LC")
    }

    @Test func severalAudioTracksTakeTheDefault() throws {
        // Track 1 is a 200 Hz tone, track 2 (default, French) an 1800 Hz tone.
        let src = try Support.fixture("two-tracks.mov", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-f", "lavfi", "-i", "sine=f=200:d=7",
            "-f", "lavfi", "-i", "sine=f=1800:d=7", "-map", "0", "-map", "1", "-map", "2",
            "-c:v", "libx264", "-c:a", "aac", "-disposition:a:0", "0", "-disposition:a:1", "default",
            "-metadata:s:a:1", "language=fra"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src, "-o", out.path, "--preset", try Support.testPreset())
        #expect(r.status == 0)
        #expect(r.stderr.contains("2 audio tracks: using stream #2"), "stderr: \(r.stderr)")
        // The packaged audio is the 1800 Hz track: count zero crossings of one second.
        let pcm = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("pcm-\(UUID().uuidString).raw")
        defer { try? FileManager.default.removeItem(at: pcm) }
        let d = try Support.run("ffmpeg", ["-v", "error", "-i", out.appendingPathComponent("a48/index.m3u8").path, "-ss", "2", "-t", "1",
                                           "-f", "s16le", "-ac", "1", "-ar", "48000", pcm.path])
        #expect(d.status == 0)
        let samples = try Data(contentsOf: pcm).withUnsafeBytes { Array($0.bindMemory(to: Int16.self)) }
        let crossings = zip(samples, samples.dropFirst()).filter { ($0 < 0) != ($1 < 0) }.count
        #expect(abs(crossings - 3600) < 200, "\(crossings) zero crossings in 1 s")
    }

    @Test(arguments: [
        ("mkv-vp9-opus.mkv", ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus"]),
        ("webm-vp8-vorbis.webm", ["-c:v", "libvpx", "-deadline", "realtime", "-c:a", "libvorbis"]),
        ("avi-mpeg4-mp3.avi", ["-c:v", "mpeg4", "-q:v", "5", "-c:a", "libmp3lame"]),
        ("ts-mpeg2-mp2.ts", ["-c:v", "mpeg2video", "-q:v", "5", "-c:a", "mp2"]),
        ("mov-prores-pcm.mov", ["-c:v", "prores_ks", "-profile:v", "0", "-c:a", "pcm_s16le"]),
    ])
    func containersAndCodecs(name: String, codecArgs: [String]) throws {
        let src = try Support.fixture(name, ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=7", "-f", "lavfi", "-i", "sine=d=7",
                                             "-shortest"] + codecArgs)
        try transcodeAndCheck(src)
    }

    @Test func audioGroupsWhenThePresetDoesNotMux() throws {
        // The default muxes each video variant's sound into its segments; `muxAudio: false` gives
        // video-only segments and an AUDIO group per sound instead, and that package holds too.
        let src = try Support.fixture("groups-source.mp4", ["-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=8", "-f", "lavfi", "-i", "sine=d=8",
                                                            "-shortest", "-c:v", "libx264", "-c:a", "aac"])
        let text = try String(contentsOfFile: try Support.testPreset(), encoding: .utf8)
            .replacingOccurrences(of: #""name": "test","#, with: #""name": "test-groups", "muxAudio": false,"#)
        let preset = try Support.scratch().appendingPathComponent("groups.json")
        try text.write(to: preset, atomically: true, encoding: .utf8)
        let pkg = try transcodeAndCheck(src, preset: preset.path)
        let master = try String(contentsOf: pkg.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(master.contains(#"#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a48""#), "\(master)")
        let video = try PackageProbe(dir: pkg).variants().filter { $0.attributes.contains("RESOLUTION=") }
        #expect(video.count == 2 && video.allSatisfy { $0.attributes.contains(#"AUDIO="a48""#) }, "\(video.map(\.attributes))")
        let streams = try Support.ffprobe(["-show_streams", pkg.appendingPathComponent("v240/index.m3u8").path])["streams"] as? [[String: Any]] ?? []
        #expect(streams.compactMap { $0["codec_type"] as? String } == ["video"])
    }

    @Test func corruptPacketsAreSkippedWithAWarning() throws {
        let clean = try Support.fixture("for-corruption.ts", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=8", "-f", "lavfi", "-i", "sine=d=8",
            "-c:v", "libx264", "-g", "250", "-c:a", "aac", "-shortest"])
        var data = try Data(contentsOf: URL(fileURLWithPath: clean))
        // Overwrite payload bytes (not TS headers) in the middle of the file with garbage.
        var rng = SystemRandomNumberGenerator()
        let packets = data.count / 188
        for p in stride(from: packets / 3, to: packets / 3 + 40, by: 2) {
            for i in 8..<188 { data[p * 188 + i] = UInt8.random(in: 0...255, using: &rng) }
        }
        let dir = try Support.scratch()
        let src = dir.appendingPathComponent("corrupt.ts")
        try data.write(to: src)
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src.path, "-o", out.path, "--preset", try Support.testPreset())
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.range(of: #"warning: .*corrupt\.ts: \d+ corrupt packets? skipped"#, options: .regularExpression) != nil, "stderr: \(r.stderr)")
        #expect(try Support.coursepack("validate", out.path).status == 0)
    }

    @Test func jsonProgressAndSummary() throws {
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", sample, "-o", out.path, "--preset", "minimal", "--json")
        #expect(r.status == 0)
        let text = r.stdout
        // JSON lines of progress, then one pretty-printed summary object.
        let firstBrace = text.range(of: "\n{\n") ?? text.range(of: "{\n")
        let lines = text[..<(firstBrace?.lowerBound ?? text.startIndex)].split(separator: "\n")
        // At least one progress line per 10 s of the 24-s sample, positions rising to its end.
        #expect(lines.count >= 3, "\(lines.count) progress lines")
        var positions: [Double] = []
        for l in lines {
            let o = try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any]
            #expect(o?["event"] as? String == "progress")
            positions.append(o?["position"] as? Double ?? -1)
        }
        #expect(positions == positions.sorted() && (positions.last ?? 0) > 20, "\(positions)")
        let summary = try JSONSerialization.jsonObject(with: Data(text[(firstBrace?.lowerBound ?? text.startIndex)...].utf8)) as? [String: Any]
        let master = summary?["master"] as? [String: Any]
        #expect((master?["variants"] as? [Any])?.count == 3)  // v360, v216 and the AAC audio-only variant
        let masters = (master?["masters"] as? [[String: Any]] ?? []).compactMap { $0["playlist"] as? String }
        #expect(masters == ["master.m3u8", "lite.m3u8", "min.m3u8", "opus.m3u8"], "\(masters)")
    }

    @Test func existingOutputIsReplacedOnlyOnSuccess() throws {
        let dir = try Support.scratch()
        let out = dir.appendingPathComponent("pkg")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        try "keep".write(to: out.appendingPathComponent("marker"), atomically: true, encoding: .utf8)
        let bad = dir.appendingPathComponent("bad.mp4")
        try Data((0..<5000).map { _ in UInt8.random(in: 0...255) }).write(to: bad)
        let r = try Support.coursepack("transcode", bad.path, "-o", out.path)
        #expect(r.status == 65)
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("marker").path))
        let src = try Support.fixture("silent.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=7", "-c:v", "libx264"])
        let ok = try Support.coursepack("transcode", src, "-o", out.path, "--preset", try Support.testPreset())
        #expect(ok.status == 0)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("marker").path))
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("master.m3u8").path))
        #expect(Support.leftovers(beside: out).isEmpty)
    }
}

extension Array where Element: Hashable {
    func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
