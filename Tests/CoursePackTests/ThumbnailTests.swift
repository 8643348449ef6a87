import Foundation
import Testing

/// Poster and storyboard come from the same decode pass as the renditions.
@Suite(.blockingThreads) struct ThumbnailTests {
    func gray(_ path: String) throws -> (bytes: [UInt8], width: Int, height: Int) {
        let j = try Support.ffprobe(["-show_streams", path])
        let s = (j["streams"] as? [[String: Any]])?.first ?? [:]
        let w = s["width"] as? Int ?? 0, h = s["height"] as? Int ?? 0
        let tmp = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("g-\(UUID().uuidString).raw")
        defer { try? FileManager.default.removeItem(at: tmp) }
        let r = try Support.run("ffmpeg", ["-v", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "gray", tmp.path])
        #expect(r.status == 0)
        return ([UInt8](try Data(contentsOf: tmp)), w, h)
    }

    @Test func posterAndStoryboardOfTheSample() throws {
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", sample, "-o", out.path, "--preset", "minimal")
        #expect(r.status == 0, "\(r.stderr)")
        let thumbs = out.appendingPathComponent("thumbs")

        // Poster at the top rendition's size, not black; a 320-wide copy.
        let poster = try gray(thumbs.appendingPathComponent("poster.jpg").path)
        #expect(poster.width == 640 && poster.height == 360)
        let mean = poster.bytes.reduce(0) { $0 + Int($1) } / max(1, poster.bytes.count)
        #expect(mean > 40, "poster mean luma \(mean)")
        let small = try gray(thumbs.appendingPathComponent("poster-320.jpg").path)
        #expect(small.width == 320 && small.height == 180)

        // Storyboard: WebVTT cues covering the lecture, each tile inside its sprite.
        let vtt = try String(contentsOf: thumbs.appendingPathComponent("storyboard.vtt"), encoding: .utf8)
        #expect(vtt.hasPrefix("WEBVTT\n"))
        let cues = vtt.components(separatedBy: "\n\n").dropFirst().filter { !$0.isEmpty }
        #expect(cues.count == 24, "\(cues.count) cues for 24 s at 1 s")
        var sizes: [String: (Int, Int)] = [:]
        var lastEnd = 0.0
        for cue in cues {
            let lines = cue.split(separator: "\n")
            #expect(lines.count == 2)
            let times = lines[0].components(separatedBy: " --> ").map(seconds)
            #expect(times.count == 2 && times[0] < times[1] && abs(times[0] - lastEnd) < 0.001, "\(lines[0])")
            lastEnd = times[1]
            let parts = lines[1].split(separator: "#")
            let file = String(parts[0])
            let xywh = parts[1].dropFirst(5).split(separator: ",").compactMap { Int($0) }
            #expect(parts[1].hasPrefix("xywh=") && xywh.count == 4)
            if sizes[file] == nil {
                let p = try Support.ffprobe(["-show_streams", thumbs.appendingPathComponent(file).path])
                let s = (p["streams"] as? [[String: Any]])?.first ?? [:]
                sizes[file] = (s["width"] as? Int ?? 0, s["height"] as? Int ?? 0)
            }
            let (w, h) = sizes[file]!
            #expect(xywh[0] + xywh[2] <= w && xywh[1] + xywh[3] <= h, "\(lines[1]) outside \(w)x\(h)")
        }
        #expect(abs(lastEnd - 24) < 0.05)
        // The extra outputs leave the HLS package valid.
        #expect(try Support.coursepack("validate", out.path).status == 0)
    }

    @Test func audioOnlySourceHasNoThumbnails() throws {
        let src = try Support.fixture("speech-only.m4a", ["-f", "lavfi", "-i", "sine=f=300:d=7", "-c:a", "aac"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        #expect(try Support.coursepack("transcode", src, "-o", out.path, "--preset", "minimal").status == 0)
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("thumbs").path))
    }

    func seconds(_ s: String) -> Double {
        let p = s.split(separator: ":").compactMap { Double($0) }
        return p.count == 3 ? p[0] * 3600 + p[1] * 60 + p[2] : -1
    }
}

/// Offline downloads: fast-start progressive MP4 and M4A remuxed from the renditions.
@Suite(.blockingThreads) struct DownloadTests {
    func topLevelBoxes(_ url: URL) throws -> [String] {
        let d = [UInt8](try Data(contentsOf: url))
        var i = 0, out: [String] = []
        while i + 8 <= d.count {
            var size = Int(d[i]) << 24 | Int(d[i + 1]) << 16 | Int(d[i + 2]) << 8 | Int(d[i + 3])
            out.append(String(decoding: d[(i + 4)..<(i + 8)], as: UTF8.self))
            if size == 1 { size = (0..<8).reduce(0) { $0 << 8 | Int(d[i + 8 + $1]) } }
            if size == 0 { break }
            i += size
        }
        return out
    }

    @Test func fastStartMP4AndM4ADecode() throws {
        let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path
        let out = try Support.scratch().appendingPathComponent("pkg")
        #expect(try Support.coursepack("transcode", sample, "-o", out.path, "--preset", "minimal").status == 0)
        for (file, streams) in [("downloads/lecture-v360.mp4", 2), ("downloads/lecture-a36.m4a", 1)] {
            let url = out.appendingPathComponent(file)
            let boxes = try topLevelBoxes(url)
            let moov = boxes.firstIndex(of: "moov"), mdat = boxes.firstIndex(of: "mdat")
            #expect(moov != nil && mdat != nil && moov! < mdat!, "\(file): \(boxes)")
            #expect(!boxes.contains("moof"), "\(file) is fragmented: \(boxes)")
            let j = try Support.ffprobe(["-show_streams", "-show_format", url.path])
            #expect((j["streams"] as? [Any])?.count == streams)
            let duration = Double((j["format"] as? [String: Any])?["duration"] as? String ?? "") ?? 0
            #expect(abs(duration - 24) < 0.5, "\(file): \(duration) s")
            let decode = try Support.run("ffmpeg", ["-v", "error", "-xerror", "-i", url.path, "-f", "null", "-"])
            #expect(decode.status == 0 && decode.stderr.isEmpty, "\(file): \(decode.stderr)")
        }
        #expect(try Support.validateLectureJSON(out).status == 0)
        let lecture = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("lecture.json"))) as? [String: Any]
        #expect((lecture?["downloads"] as? [Any])?.count == 2)
    }
}
