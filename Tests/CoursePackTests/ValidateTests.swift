import Foundation
import Testing

/// `coursepack validate` passes good packages and fails broken ones.
@Suite(.serialized) struct ValidateTests {
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
    }

    @Test func missingMasterFails() throws {
        let dir = try Support.scratch()
        let v = try Support.coursepack("validate", dir.path)
        #expect(v.status == 1)
        #expect(v.stdout.contains("master.m3u8 parses"))
    }
}
