import Foundation
import Testing

/// A real player: headless Chromium plays the master playlist natively, then seeks.
@Suite(.blockingThreads) struct BrowserTests {
    @Test func chromiumPlaysAndSeeks() throws {
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let out = try Support.scratch().appendingPathComponent("pkg")
        let t = try Support.coursepack("transcode", sample, "-o", out.path, "--preset", "minimal")
        #expect(t.status == 0, "\(t.stderr)")
        let r = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/browser/play_hls.py").path, out.path, "12"])
        #expect(r.status == 0, "player: \(r.stdout) \(r.stderr.suffix(2000))")
        let result = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        #expect((result?["videoWidth"] as? Int ?? 0) > 0)
        #expect(abs((result?["duration"] as? Double ?? 0) - 24) < 1)
    }
}
