import Foundation
import OCR

/// A chapter's slide as read by OCR: its title (the heading) and all of its text.
public struct SlideText: Sendable, Codable, Equatable {
    public var title: String?
    public var text: String

    /// Words Tesseract is less sure of than this (0-100) are left out as noise.
    static let minimumConfidence = 55.0
    /// The heading is looked for in the top share of the picture.
    static let headingBand = 0.4

    /// Picks the heading from the lines read on a still `height` pixels tall: the line in the top 40%
    /// whose words are tallest (the median word height, so a pointer touching one word does not count;
    /// a line within 10% of the tallest counts as as tall, and the topmost of those wins), or the first
    /// line when none is there. When that line's words are not readable (too few confident letters),
    /// the slide has no readable heading and `title` is nil: a lower line is never promoted to it.
    init(lines: [TextLine], height: Int) {
        let read: [(text: String, top: Int, size: Int)] = lines.compactMap { line in
            let sizes = line.words.map(\.box.height).sorted()
            guard !sizes.isEmpty else { return nil }
            let text = Self.clean(line.words.filter { $0.confidence >= Self.minimumConfidence }.map(\.text))
            return (text, line.box.y, sizes[sizes.count / 2])
        }
        text = read.map(\.text).filter { Self.letters($0) >= 2 }.joined(separator: "\n")
        // Lines of marks alone (a rule, a bullet, a pointer) are not candidates.
        let candidates = read.filter { Self.letters($0.text) >= 2 || $0.text.isEmpty }
        let band = candidates.filter { Double($0.top) < Self.headingBand * Double(height) }
        let heading: (text: String, top: Int, size: Int)?
        if let tallest = band.map(\.size).max() {
            heading = band.first { Double($0.size) >= 0.9 * Double(tallest) }
        } else {
            heading = candidates.first
        }
        title = heading.flatMap { Self.letters($0.text) >= 2 ? $0.text : nil }
    }

    public init(title: String?, text: String) {
        self.title = title
        self.text = text
    }

    /// Joins words, drops stray marks OCR reads from rules and bullets, and closes the gaps Tesseract
    /// leaves between Chinese, Japanese and Korean characters.
    static func clean(_ words: [String]) -> String {
        let kept = words.map { $0.trimmingCharacters(in: .whitespaces) }.filter { w in
            !w.isEmpty && w.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) }
        }
        var out = ""
        for w in kept {
            if let last = out.unicodeScalars.last, let first = w.unicodeScalars.first, !(isCJK(last) && isCJK(first)), !out.isEmpty {
                out += " "
            }
            out += w
        }
        let edges = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "()[]\"'?!.%+#")).inverted
        return out.trimmingCharacters(in: edges.union(.whitespaces))
    }

    static func letters(_ s: String) -> Int {
        s.unicodeScalars.filter { CharacterSet.letters.contains($0) }.count
    }

    static func isCJK(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x3000...0x303F, 0x3040...0x30FF, 0x3400...0x4DBF, 0x4E00...0x9FFF, 0xAC00...0xD7AF, 0xF900...0xFAFF, 0xFF00...0xFFEF: return true
        default: return false
        }
    }
}

/// Reads chapter stills on a thread of its own, one at a time, so that OCR never holds up the decode
/// loop or the chapter detector. Pictures wait in a small bounded queue.
final class SlideReader: @unchecked Sendable {
    // @unchecked Sendable: `reader` and `results` are touched only by the reading thread until `finish`
    // has waited for it; the queue is thread-safe.
    struct Job {
        var chapter: Int
        var pixels: [UInt8]
        var width: Int
        var height: Int
    }

    private let queue = BoundedQueue<Job>(capacity: 4)
    private let done = DispatchSemaphore(value: 0)
    private var reader: TextReader?
    private var results: [Int: SlideText] = [:]
    private var failure: Error?
    private var joined = false

    /// Fails at once when Tesseract has no data for one of the languages.
    init(languages: String) throws {
        do {
            reader = try TextReader(languages: languages)
        } catch let e as TextReaderError {
            throw CoursePackError(.usage, path: "OCR languages \"\(languages)\"", e.description)
        }
        let thread = Thread { [self] in
            defer { done.signal() }
            while let job = queue.take() {
                do {
                    let lines = try job.pixels.withUnsafeBufferPointer {
                        try reader!.read($0.baseAddress!, width: job.width, height: job.height, stride: job.width)
                    }
                    results[job.chapter] = SlideText(lines: lines, height: job.height)
                } catch {
                    failure = error
                }
            }
            reader = nil
        }
        thread.name = "coursepack-ocr"
        thread.start()
    }

    /// Queues a chapter's still (a grey picture) for reading; a later still of the same chapter replaces it.
    func read(chapter: Int, pixels: [UInt8], width: Int, height: Int) {
        _ = queue.put(Job(chapter: chapter, pixels: pixels, width: width, height: height))
    }

    /// Waits for every queued still; returns what was read, by chapter index.
    func finish() throws -> [Int: SlideText] {
        queue.finish()
        done.wait()
        joined = true
        if let failure { throw failure }
        return results
    }

    /// Drops what is queued and waits for the thread.
    func abandon() {
        guard !joined else { return }
        queue.abandon()
        done.wait()
        joined = true
    }
}
