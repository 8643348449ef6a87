import Foundation
import Testing
@testable import Lecture

/// Slide-change chapters, measured on a generated lecture with known change times.
@Suite struct ChapterTests {
    static let changes: [Double] = [12, 25, 40, 53, 68]

    /// 80 s of slides (one change by a 1 s cross-fade), a busy picture-in-picture corner, camera noise.
    func lecture() throws -> String {
        let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        let bounds = [0.0] + Self.changes + [80]
        var filters: [String] = []
        for i in 0..<(bounds.count - 1) {
            let (s, e) = (bounds[i], bounds[i + 1])
            // Slide 3 fades out and slide 4 fades in over the second after 40 s.
            let alpha = i == 2 ? "if(lt(t\\,40)\\,1\\,max(0\\,1-(t-40)))" : i == 3 ? "min(1\\,max(0\\,t-40))" : "1"
            let until = i == 2 ? e + 1 : e
            for line in 0..<3 {
                filters.append("drawtext=fontfile=\(font):text='Slide \(i + 1) topic \(["alpha", "beta", "gamma", "delta", "epsilon", "zeta"][i]) line \(line + 1)':x=40:y=\(40 + line * 60):fontsize=\(line == 0 ? 36 : 24):fontcolor=black:alpha='\(alpha)':enable='between(t,\(s),\(until))'")
            }
        }
        return try Support.fixture("chapters-lecture.mp4", [
            "-f", "lavfi", "-i", "color=c=white:s=640x360:r=25:d=80",
            "-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=80",
            "-f", "lavfi", "-i", "sine=f=220:d=80",
            "-filter_complex", "[0:v]\(filters.joined(separator: ","))[bg];[bg][1:v]overlay=x=470:y=230,noise=alls=5:allf=t[v]",
            "-map", "[v]", "-map", "2:a", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-c:a", "aac"])
    }

    @Test func precisionAndRecallWithinOneSecond() throws {
        let src = try lecture()
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", src, "-o", out.path, "--preset", try Support.testPreset(), "--json")
        #expect(r.status == 0, "\(r.stderr)")
        let summaryText = r.stdout[r.stdout.range(of: "\n{\n")!.lowerBound...]
        let summary = try JSONSerialization.jsonObject(with: Data(summaryText.utf8)) as? [String: Any]
        let chapters = summary?["chapters"] as? [[String: Any]] ?? []
        let found = chapters.compactMap { $0["start"] as? Double }.filter { $0 > 0 }
        let hits = found.filter { f in Self.changes.contains { abs($0 - f) <= 1 } }.count
        let recalled = Self.changes.filter { c in found.contains { abs($0 - c) <= 1 } }.count
        let precision = found.isEmpty ? 0 : Double(hits) / Double(found.count)
        let recall = Double(recalled) / Double(Self.changes.count)
        #expect(precision >= 0.9 && recall >= 0.9, "found \(found), precision \(precision), recall \(recall)")
        // One full-resolution still per chapter, and a WebVTT chapters file.
        for c in chapters {
            let still = out.appendingPathComponent(c["still"] as? String ?? "")
            let j = try Support.ffprobe(["-show_streams", still.path])
            let s = (j["streams"] as? [[String: Any]])?.first
            #expect(s?["width"] as? Int == 640 && s?["height"] as? Int == 360)
        }
        let vtt = try String(contentsOf: out.appendingPathComponent("chapters/chapters.vtt"), encoding: .utf8)
        #expect(vtt.hasPrefix("WEBVTT") && vtt.components(separatedBy: " --> ").count - 1 == chapters.count)
    }

    func cells(_ value: (Int, Int) -> Double) -> [Double] {
        (0..<(ChapterDetector.rows)).flatMap { y in (0..<ChapterDetector.cols).map { x in value(x, y) } }
    }

    @Test func busyCornerAndNoiseMakeNoChapter() {
        var d = ChapterDetector()
        var t = 0.0
        for i in 0..<400 {  // 80 s at 5 samples a second
            let c = cells { x, y in
                // Bottom-right corner changes every sample; elsewhere faint noise.
                x >= 24 && y >= 12 ? Double((i * 37 + x * 11 + y * 7) % 255) : 240 + Double((i + x + y) % 3)
            }
            #expect(d.add(c, at: t) == nil)
            t += 0.2
        }
        #expect(d.starts == [0])
    }

    @Test func cutsAreFoundOnceAndShortChaptersMerged() {
        var d = ChapterDetector()
        var found: [Double] = []
        for i in 0..<300 {
            let t = Double(i) * 0.2
            // Slides change at 12 s, 16 s (too soon after 12: merged) and 30 s; each changes a seventh of the picture.
            let slide = t < 12 ? 0 : t < 16 ? 1 : t < 30 ? 2 : 3
            let c = cells { x, y in (y < 5 && x < 16) ? Double(40 * slide + 20) : 240 }
            if let s = d.add(c, at: t) { found.append(s) }
        }
        #expect(found.count == 2 && abs(found[0] - 12) < 0.5 && abs(found[1] - 30) < 0.5, "\(found)")
    }
}
