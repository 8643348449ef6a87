import Foundation

/// One chapter of the lecture.
public struct Chapter: Sendable, Codable {
    public var index: Int
    public var start: Double
    public var end: Double
    /// The slide's heading as read by OCR, or "Chapter N" when the slide has no readable text.
    public var title: String
    /// "slide" when the title was read from the slide, "number" when it is the chapter's number.
    public var titleSource: String
    /// All the text read on the slide, line by line ("" when none).
    public var text: String
    /// The slide as it settled, at the source's full resolution.
    public var still: String
    /// The same slide small and light (WebP, short side at most 360 px) for the slides + audio lecture
    /// on 2G links.
    public var lightStill: String?

    package init(index: Int, start: Double, end: Double, title: String, titleSource: String, text: String, still: String, lightStill: String? = nil) {
        self.index = index
        self.start = start
        self.end = end
        self.title = title
        self.titleSource = titleSource
        self.text = text
        self.still = still
        self.lightStill = lightStill
    }
}

extension Chapter {
    /// lecture.json written before chapters had titles reads with numbered ones.
    public init(from decoder: any Swift.Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        start = try c.decode(Double.self, forKey: .start)
        end = try c.decode(Double.self, forKey: .end)
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? "Chapter \(index)"
        titleSource = try c.decodeIfPresent(String.self, forKey: .titleSource) ?? "number"
        text = try c.decodeIfPresent(String.self, forKey: .text) ?? ""
        still = try c.decode(String.self, forKey: .still)
        lightStill = try c.decodeIfPresent(String.self, forKey: .lightStill)
    }
}

/// Cue text that WebVTT reads as plain text: no markup, no "-->", one line.
package func vttText(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\n", with: " ")
}

/// A WebVTT timestamp, hh:mm:ss.mmm.
public func vttTimestamp(_ t: Double) -> String {
    let ms = Int((max(0, t) * 1000).rounded())
    return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}
