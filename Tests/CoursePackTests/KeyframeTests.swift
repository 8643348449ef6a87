import Foundation
import Testing

/// Where renditions place keyframes, read back with ffprobe from the packages' playlists.
@Suite(.serialized, .blockingThreads) struct KeyframeTests {
    /// The test ladder (240p and 144p at 15 fps) with `keyframeMinChange` set.
    func preset(minChange: Double) throws -> String {
        let url = try Support.scratch().appendingPathComponent("ladder.json")
        let json = """
        { "name": "kf", "segmentSeconds": 6, "keyframeSeconds": 2, "keyframeMinChange": \(minChange), "x264Preset": "ultrafast",
          "rungs": [ { "name": "v240", "height": 240, "crf": 28, "maxKbps": 400, "audio": "a48" },
                     { "name": "v144", "height": 144, "crf": 28, "maxKbps": 100, "maxFps": 15, "audio": "a48" } ],
          "audio": [ { "name": "a48", "kbps": 48, "channels": 1, "audioOnly": true } ] }
        """
        try json.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Transcodes and returns each video rendition's keyframe times, rounded to 0.1 s.
    func keyframes(_ source: String, preset: String) throws -> [String: [Double]] {
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", source, "-o", out.path, "--preset", preset, "--renditions-only")
        #expect(r.status == 0, "transcode failed: \(r.stderr)")
        let v = try Support.coursepack("validate", out.path)
        #expect(v.status == 0, "validate failed: \(v.stdout)")
        var result: [String: [Double]] = [:]
        for name in ["v240", "v144"] {
            let j = try Support.ffprobe(["-select_streams", "v:0", "-show_entries", "packet=pts_time,flags",
                                         out.appendingPathComponent("\(name)/index.m3u8").path])
            let packets = j["packets"] as? [[String: Any]] ?? []
            result[name] = packets.filter { ($0["flags"] as? String ?? "").hasPrefix("K") }
                .compactMap { ($0["pts_time"] as? String).flatMap(Double.init) }
                .map { ($0 * 10).rounded() / 10 }.sorted()
        }
        return result
    }

    /// 14 s at 426x240: a dark picture with a small moving box, which turns light at 7 s.
    func slideChangeSource() throws -> String {
        try Support.fixture("kf-slide-change.mp4", [
            "-f", "lavfi", "-i", "color=c=0x202020:s=426x240:r=30:d=14,drawbox=x=0:y=0:w=iw:h=ih:color=0xd0d0d0:t=fill:enable='gte(t,7)',drawbox=x='20+t*12':y=100:w=20:h=20:color=0x2060c0:t=fill",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30"])
    }

    @Test func staticStretchesKeepOnlySegmentStartsAndChanges() throws {
        let k = try keyframes(try slideChangeSource(), preset: try preset(minChange: 0.25))
        // Segment starts (0, 6, 12) always; 8 s because the picture changed at 7 s; not 2, 4 or 10 s,
        // where only the small box moved since the last keyframe.
        #expect(k["v240"] == [0, 6, 8, 12], "\(k)")
        #expect(k["v144"] == k["v240"], "\(k)")
    }

    @Test func everyKeyframeTimeWithoutAChangeThreshold() throws {
        let k = try keyframes(try slideChangeSource(), preset: try preset(minChange: 0))
        #expect(k["v240"] == [0, 2, 4, 6, 8, 10, 12], "\(k)")
        #expect(k["v144"] == k["v240"], "\(k)")
    }

    @Test func movingPictureGetsAKeyframeEveryTwoSeconds() throws {
        // A zoom changes every pixel: every keyframe time is kept even with the threshold.
        let src = try Support.fixture("kf-zoom.mp4", [
            "-f", "lavfi", "-i", "mandelbrot=s=426x240:r=30,trim=duration=10",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        let k = try keyframes(src, preset: try preset(minChange: 0.25))
        #expect(k["v240"] == [0, 2, 4, 6, 8], "\(k)")
    }

    @Test func sourceFrameTypesAreNotInherited() throws {
        // The source has a keyframe every 0.5 s and is already the top rung's size, so its decoded
        // pictures go to the encoder unscaled: their picture types must not become keyframes.
        let src = try Support.fixture("kf-dense-gop.mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=426x240:r=30:d=8",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "15"])
        let k = try keyframes(src, preset: try preset(minChange: 0))
        #expect(k["v240"] == [0, 2, 4, 6], "\(k)")
        #expect(k["v144"] == [0, 2, 4, 6], "\(k)")
    }
}
