import Foundation
import Testing

/// `coursepack validate` passes good packages and fails broken ones.
@Suite(.serialized, .blockingThreads) struct ValidateTests {
    func freshPackage() throws -> URL {
        let src = try Support.fixture("validate-src.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30:d=13", "-f", "lavfi", "-i", "sine=d=13",
            "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src, "-o", out.path, "--preset", try Support.testPreset())
        #expect(r.status == 0, "\(r.stderr)")
        let v = try Support.coursepack("validate", out.path)
        #expect(v.status == 0, "\(v.stdout)")
        return out
    }

    @Test func deletedSegmentFails() throws {
        let pkg = try freshPackage()
        try FileManager.default.removeItem(at: pkg.appendingPathComponent("v144/seg_00001.m4s"))
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v144/index.m3u8: every segment present"), "\(v.stdout)")
    }

    @Test func codecsThatDoNotMatchTheStreamsFail() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("master.m3u8")
        let text = try String(contentsOf: url, encoding: .utf8)
        // The AAC group declared as Opus, and an unknown codec.
        var v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 0)
        try text.replacingOccurrences(of: ",mp4a.40.2\"", with: ",opus\"").write(to: url, atomically: true, encoding: .utf8)
        v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v240/index.m3u8: CODECS match the streams"), "\(v.stdout)")
        try text.replacingOccurrences(of: ",mp4a.40.2\"", with: ",mp4a.40.2,xyz1\"").write(to: url, atomically: true, encoding: .utf8)
        v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v240/index.m3u8: CODECS are known codecs"), "\(v.stdout)")
    }

    @Test func corruptedPlaylistFails() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("v240/index.m3u8")
        let text = try String(contentsOf: url, encoding: .utf8).replacingOccurrences(of: "#EXTINF:6.000000,", with: "#EXTINF:six,")
        try text.write(to: url, atomically: true, encoding: .utf8)
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v240/index.m3u8: parses"), "\(v.stdout)")
    }

    @Test func understatedBandwidthFails() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("master.m3u8")
        let text = try String(contentsOf: url, encoding: .utf8)
        let fixed = text.replacingOccurrences(of: #",AVERAGE-BANDWIDTH="#, with: ",X-AB=")
            .replacingOccurrences(of: #"BANDWIDTH=\d+"#, with: "BANDWIDTH=1000", options: .regularExpression)
            .replacingOccurrences(of: ",X-AB=", with: ",AVERAGE-BANDWIDTH=")
        try fixed.write(to: url, atomically: true, encoding: .utf8)
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("BANDWIDTH within 10% of measured peak"), "\(v.stdout)")
    }

    @Test func corruptSegmentBytesFail() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("v240/seg_00000.m4s")
        var data = try Data(contentsOf: url)
        // Keep the boxes intact, scramble the coded picture data.
        for i in stride(from: data.count / 2, to: data.count - 16, by: 3) { data[i] = 0xFF }
        try data.write(to: url)
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1, "\(v.stdout)")
        #expect(v.stdout.contains("FAIL v240/index.m3u8: every segment decodes"), "\(v.stdout)")
    }

    /// Replaces `old` with `new` in a package file, checking that it was there.
    func edit(_ pkg: URL, _ file: String, _ old: String, _ new: String) throws {
        let url = pkg.appendingPathComponent(file)
        let text = try String(contentsOf: url, encoding: .utf8)
        #expect(text.contains(old), "\(file) has no \(old)")
        try text.replacingOccurrences(of: old, with: new).write(to: url, atomically: true, encoding: .utf8)
    }

    @Test func outOfRangeNumbersFailWithoutACrash() throws {
        let pkg = try freshPackage()
        let cases: [(String, String, String, String)] = [
            ("v240/index.m3u8", "#EXTINF:6.000000,", "#EXTINF:1e308,", "FAIL v240/index.m3u8: parses"),
            ("v240/index.m3u8", "#EXTINF:6.000000,", "#EXTINF:inf,", "FAIL v240/index.m3u8: parses"),
            ("v240/index.m3u8", "#EXT-X-TARGETDURATION:6", "#EXT-X-TARGETDURATION:99999999999999999999", "FAIL v240/index.m3u8: parses"),
            ("v240/iframes.m3u8", "#EXT-X-BYTERANGE:", "#EXT-X-BYTERANGE:9223372036854775807@9223372036854775807\n#X:", "FAIL v240/iframes.m3u8: I-frame playlist parses"),
            ("master.m3u8", "BANDWIDTH=", "BANDWIDTH=99999999999999999999999999", "FAIL v240/index.m3u8: BANDWIDTH: missing, or not a whole number"),
        ]
        for (file, old, new, failure) in cases {
            let original = try Data(contentsOf: pkg.appendingPathComponent(file))
            try edit(pkg, file, old, new)
            let v = try Support.coursepack("validate", pkg.path)
            #expect(v.status == 1, "\(new): status \(v.status) \(v.stderr.suffix(300))")
            #expect(v.stdout.contains(failure), "\(new): \(v.stdout.split(separator: "\n").filter { $0.hasPrefix("FAIL") })")
            try original.write(to: pkg.appendingPathComponent(file))
        }
    }

    @Test func truncatedMdhdFails() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("v240/init.mp4")
        var b = [UInt8](try Data(contentsOf: url))
        func be32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        func put32(_ i: Int, _ v: Int) { for k in 0..<4 { b[i + k] = UInt8((v >> (24 - 8 * k)) & 0xFF) } }
        func find(_ type: String, from: Int, to: Int) -> Int? {
            var i = from
            while i + 8 <= to {
                if String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self) == type { return i }
                i += be32(i)
            }
            return nil
        }
        // moov/trak/mdia/mdhd: cut mdhd to its 8-byte header and shrink its parents to match.
        let moov = try #require(find("moov", from: 0, to: b.count))
        let trak = try #require(find("trak", from: moov + 8, to: moov + be32(moov)))
        let mdia = try #require(find("mdia", from: trak + 8, to: trak + be32(trak)))
        let mdhd = try #require(find("mdhd", from: mdia + 8, to: mdia + be32(mdia)))
        let cut = be32(mdhd) - 8
        b.removeSubrange((mdhd + 8)..<(mdhd + 8 + cut))
        put32(mdhd, 8)
        for parent in [moov, trak, mdia] { put32(parent, be32(parent) - cut) }
        try Data(b).write(to: url)
        let v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1, "\(v.stdout)")
        #expect(v.stdout.contains("FAIL v240/index.m3u8: initialisation segment describes its stream"), "\(v.stdout)")
        #expect(v.stdout.contains("mdhd"), "\(v.stdout)")
    }

    @Test func symbolicLinksAreNotFollowed() throws {
        let pkg = try freshPackage()
        let fm = FileManager.default
        // A rendition folder that links to a copy outside the package: every file there is good.
        let outside = pkg.deletingLastPathComponent().appendingPathComponent("outside-v144")
        try fm.copyItem(at: pkg.appendingPathComponent("v144"), to: outside)
        try fm.removeItem(at: pkg.appendingPathComponent("v144"))
        try fm.createSymbolicLink(at: pkg.appendingPathComponent("v144"), withDestinationURL: outside)
        var v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v144/index.m3u8: parses") && v.stdout.contains("symbolic link"), "\(v.stdout)")
        try fm.removeItem(at: pkg.appendingPathComponent("v144"))
        try fm.moveItem(at: outside, to: pkg.appendingPathComponent("v144"))
        v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 0, "\(v.stdout)")
        // A segment and an init segment that link to files elsewhere.
        for file in ["v240/seg_00001.m4s", "v240/init.mp4"] {
            let target = pkg.deletingLastPathComponent().appendingPathComponent(UUID().uuidString)
            try fm.moveItem(at: pkg.appendingPathComponent(file), to: target)
            try fm.createSymbolicLink(at: pkg.appendingPathComponent(file), withDestinationURL: target)
            v = try Support.coursepack("validate", pkg.path)
            #expect(v.status == 1, "\(file)")
            #expect(v.stdout.contains("\(file.split(separator: "/").last!) is a symbolic link"), "\(file): \(v.stdout)")
            try fm.removeItem(at: pkg.appendingPathComponent(file))
            try fm.moveItem(at: target, to: pkg.appendingPathComponent(file))
        }
    }

    @Test func repeatedAndOversizedPlaylistsAreBounded() throws {
        let pkg = try freshPackage()
        let url = pkg.appendingPathComponent("v240/index.m3u8")
        let text = try String(contentsOf: url, encoding: .utf8)
        // One segment listed 150,000 times (6 MB): refused without decoding it 150,000 times.
        let body = String(repeating: "#EXTINF:6.000000,\nseg_00000.m4s\n", count: 150_000)
        try text.replacingOccurrences(of: "#EXT-X-ENDLIST", with: body + "#EXT-X-ENDLIST").write(to: url, atomically: true, encoding: .utf8)
        var v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v240/index.m3u8: every segment listed once"), "\(v.stdout.prefix(2000))")
        // One file sliced into byte ranges: refused as a whole, not read once a range.
        try text.replacingOccurrences(of: "seg_00000.m4s", with: "#EXT-X-BYTERANGE:100@0\nseg_00000.m4s").write(to: url, atomically: true, encoding: .utf8)
        v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("FAIL v240/index.m3u8: segments are whole files"), "\(v.stdout.prefix(2000))")
        // A playlist over the size cap is not read at all.
        try (text + String(repeating: "#", count: 17 << 20)).write(to: url, atomically: true, encoding: .utf8)
        v = try Support.coursepack("validate", pkg.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("more than the 16 MB"), "\(v.stdout.prefix(2000))")
    }

    @Test func sigtermStopsValidate() throws {
        let pkg = try freshPackage()
        // 20,000 distinct names (hard links) for one segment: minutes of decoding if nothing stops it.
        let dir = pkg.appendingPathComponent("v240")
        var lines = ""
        for i in 0..<20_000 {
            try FileManager.default.linkItem(at: dir.appendingPathComponent("seg_00000.m4s"), to: dir.appendingPathComponent("l\(i).m4s"))
            lines += "#EXTINF:6.000000,\nl\(i).m4s\n"
        }
        let url = dir.appendingPathComponent("index.m3u8")
        let text = try String(contentsOf: url, encoding: .utf8)
        try text.replacingOccurrences(of: "#EXT-X-ENDLIST", with: lines + "#EXT-X-ENDLIST").write(to: url, atomically: true, encoding: .utf8)
        let p = try Child(Support.binary, ["validate", pkg.path])
        Thread.sleep(forTimeInterval: 2)
        #expect(p.isRunning, "validate ended before the signal")
        let sent = Date()
        p.send(SIGTERM)
        p.wait()
        #expect(Date().timeIntervalSince(sent) < 10)
        #expect(p.status == 128 + SIGTERM, "status \(p.status)")
    }

    @Test func missingMasterFails() throws {
        let dir = try Support.scratch()
        let v = try Support.coursepack("validate", dir.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("master.m3u8 parses"))
    }
}
