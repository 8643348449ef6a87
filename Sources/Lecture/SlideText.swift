import Foundation
import Synchronization
import LectureModel
import OCR

/// A chapter's slide as read by OCR: its title (the heading) and all of its text.
public struct SlideText: Sendable, Codable, Equatable {
    public var title: String?
    public var text: String

    /// Words Tesseract is less sure of than this (0-100) are left out as noise.
    static let minimumConfidence = 55.0
    /// The heading is looked for in the top share of the picture.
    static let headingBand = 0.4

    /// Picks the heading from the lines read on a still `height` pixels tall (`heading(in:height:)`).
    /// When that line's words are not readable (too few confident letters), the slide has no readable
    /// heading and `title` is nil: a lower line is never promoted to it.
    init(lines: [TextLine], height: Int) {
        text = lines.map { Self.clean($0.words.filter { $0.confidence >= Self.minimumConfidence }) }
            .filter { Self.letters($0) >= 2 }.joined(separator: "\n")
        title = Self.heading(in: lines, height: height).flatMap { i in
            let t = Self.clean(lines[i].words.filter { $0.confidence >= Self.minimumConfidence })
            return Self.letters(t) >= 2 ? t : nil
        }
    }

    /// The index of the heading among `lines`: the line in the top 40% whose words are tallest (the
    /// median word height, so a pointer touching one word does not count; a line within 10% of the
    /// tallest counts as as tall, and the topmost of those wins), or the first line when none is
    /// there. Lines of marks alone (a rule, a bullet, a pointer) are not candidates.
    static func heading(in lines: [TextLine], height: Int) -> Int? {
        let read: [(index: Int, text: String, top: Int, size: Int)] = lines.enumerated().compactMap { i, line in
            let sizes = line.words.map(\.box.height).sorted()
            guard !sizes.isEmpty else { return nil }
            let text = Self.clean(line.words.filter { $0.confidence >= Self.minimumConfidence })
            return (i, text, line.box.y, sizes[sizes.count / 2])
        }
        let candidates = read.filter { Self.letters($0.text) >= 2 || $0.text.isEmpty }
        let band = candidates.filter { Double($0.top) < Self.headingBand * Double(height) }
        if let tallest = band.map(\.size).max() {
            return band.first { Double($0.size) >= 0.9 * Double(tallest) }?.index
        }
        return candidates.first?.index
    }

    /// A heading read again on its own: its text and its words' confidence weighted by their lengths,
    /// or nil when it has fewer than two letters.
    static func line(_ line: TextLine) -> (text: String, confidence: Double)? {
        let text = clean(line.words)
        guard letters(text) >= 2 else { return nil }
        let weights = line.words.map { Double($0.text.count) }
        let confidence = zip(line.words, weights).map { $0.confidence * $1 }.reduce(0, +) / max(1, weights.reduce(0, +))
        return (text, confidence)
    }

    public init(title: String?, text: String) {
        self.title = title
        self.text = text
    }

    /// Joins words, drops stray marks OCR reads from rules and bullets, and closes the gaps Tesseract
    /// leaves between Chinese, Japanese and Korean characters. Where CJK meets other letters or digits
    /// ("第2讲HTTP协议") no space is put either: Tesseract's word boxes there overlap or leave gaps
    /// whatever the slide had, and the space between scripts is the renderer's to draw (CSS
    /// `text-autospace`), as Chinese text usually has none.
    static func clean(_ words: [TextWord]) -> String {
        let kept = words.map { $0.text.trimmingCharacters(in: .whitespaces) }.filter { w in
            !w.isEmpty && w.unicodeScalars.contains { CharacterSet.alphanumerics.contains($0) }
        }
        var out = ""
        for w in kept {
            if let last = out.unicodeScalars.last, let first = w.unicodeScalars.first, !isCJK(last), !isCJK(first) {
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

/// Reads the chapters' stills once the rungs have ended. During the pass each chapter's grey picture
/// waits in a file of `spool` (a later still of the same chapter replaces it); `finish`, called after
/// every rung has let go of its encoder (`OnePass.finishBranches`), reads them with Tesseract, one
/// picture in memory per reader. Tesseract's model and working memory (about 30 MB for English, 80 MB
/// for Chinese with English) are then never held beside the encoders' (BENCHMARKS.md, "the slide
/// text read after the rungs").
final class SlideReader: @unchecked Sendable {
    // @unchecked Sendable: `waiting` changes only on the chapter branch's thread, before `finish`;
    // the reading threads of `finish` read it and the constants, and change nothing.
    struct Job {
        var chapter: Int
        var pixels: [UInt8]
        var width: Int
        var height: Int
    }

    /// Tesseract's Chinese model reads a heading cut out of the slide best when it is shrunk to this
    /// many pixels tall: 312 of 330 headings exact, against 266 at full size and 280 at half size
    /// (`bench/zh_title_probe.py`; BENCHMARKS.md, "Chinese slide titles").
    static let cjkHeadingHeight = 16
    /// A heading read alone replaces the slide's reading of it when Tesseract is at least this sure of it.
    static let headingConfidence = 40.0

    private let languages: String
    private let spool: URL
    /// The size of each chapter's waiting picture.
    private var waiting: [Int: (width: Int, height: Int)] = [:]
    /// Whether headings are read again on their own (the languages name a CJK model).
    private let rereadsHeadings: Bool

    /// Fails at once when Tesseract has no data for one of the languages: the model is loaded here to
    /// find out, and let go.
    init(languages: String, spool: URL) throws {
        _ = try Self.textReader(languages)
        self.languages = languages
        self.spool = spool
        rereadsHeadings = languages.split(separator: "+").contains { Self.isCJKModel(String($0)) }
        try FileManager.default.createDirectory(at: spool, withIntermediateDirectories: true)
    }

    private static func textReader(_ languages: String) throws -> TextReader {
        do {
            return try TextReader(languages: languages)
        } catch let e as TextReaderError {
            throw CoursePackError(.usage, path: "OCR languages \"\(languages)\"", e.description)
        }
    }

    private func file(_ chapter: Int) -> URL { spool.appendingPathComponent("chapter-\(chapter).grey") }

    /// Keeps a chapter's still (a grey picture) for reading; a later still of the same chapter replaces it.
    func read(chapter: Int, pixels: [UInt8], width: Int, height: Int) throws {
        try OutputFile.write(pixels, to: file(chapter))
        waiting[chapter] = (width, height)
    }

    /// Readers working at once in `finish`, each with its own Tesseract: the pass is over and its
    /// threads are idle, so two readers take the slides of a long lecture in about half the time.
    static let readers = 2

    /// Reads every chapter's last still; returns what was read, by chapter index.
    func finish() throws -> [Int: SlideText] {
        defer { abandon() }
        let chapters = waiting.keys.sorted()
        guard !chapters.isEmpty else { return [:] }
        // A lecture of one slide (a screencast, a camera talk) would keep one reader idle: its page is
        // read in two bands at once, cut across a blank gap between its lines (`cut`). Not for CJK
        // models, whose headings are read again on the whole page.
        if chapters.count == 1, Self.readers > 1, !rereadsHeadings, case let job = try load(chapters[0]), let cut = Self.cut(job) {
            let threads = [0..<cut, cut..<job.height].map { rows in ReadingThread { try self.read(job, rows: rows) } }
            var lines: [TextLine] = []
            for outcome in threads.map({ $0.wait() }) { lines += try outcome.get() }
            return [job.chapter: SlideText(lines: lines, height: job.height)]
        }
        // Each reader takes the next chapter waiting, on a thread of its own (Tesseract's stack, as before).
        let next = Counter()
        let threads = (0..<min(Self.readers, chapters.count)).map { _ in
            ReadingThread { () throws -> [Int: SlideText] in
                let reader = try Self.textReader(self.languages)
                var results: [Int: SlideText] = [:]
                while let i = next.take(below: chapters.count) {
                    results[chapters[i]] = try self.read(try self.load(chapters[i]), with: reader)
                }
                return results
            }
        }
        var results: [Int: SlideText] = [:]
        for outcome in threads.map({ $0.wait() }) {
            results.merge(try outcome.get()) { a, _ in a }
        }
        return results
    }

    /// A chapter's waiting picture.
    private func load(_ chapter: Int) throws -> Job {
        let url = file(chapter), size = waiting[chapter]!
        let pixels: [UInt8]
        do { pixels = [UInt8](try Data(contentsOf: url)) } catch {
            throw CoursePackError(.output, path: url.path, "cannot read the slide picture back: \(error.localizedDescription)")
        }
        guard pixels.count == size.width * size.height else {
            throw CoursePackError(.output, path: url.path, "the slide picture is \(pixels.count) bytes, not \(size.width * size.height)")
        }
        return Job(chapter: chapter, pixels: pixels, width: size.width, height: size.height)
    }

    private func read(_ job: Job, with reader: TextReader) throws -> SlideText {
        let lines = try job.pixels.withUnsafeBufferPointer {
            try reader.read($0.baseAddress!, width: job.width, height: job.height, stride: job.width)
        }
        var slide = SlideText(lines: lines, height: job.height)
        // A heading that cannot be read again keeps the slide's own reading of it.
        if rereadsHeadings, let heading = (try? Self.heading(of: job, lines: lines, with: reader)) ?? nil {
            slide.title = heading
        }
        return slide
    }

    /// The lines of the band `rows` of a picture, read with a Tesseract of its own, in the picture's
    /// coordinates.
    private func read(_ job: Job, rows: Range<Int>) throws -> [TextLine] {
        let reader = try Self.textReader(languages)
        let lines = try job.pixels.withUnsafeBufferPointer {
            try reader.read($0.baseAddress! + rows.lowerBound * job.width, width: job.width, height: rows.count, stride: job.width)
        }
        let down = { (b: TextBox) in TextBox(x: b.x, y: b.y + rows.lowerBound, width: b.width, height: b.height) }
        return lines.map { line in
            TextLine(words: line.words.map { TextWord(text: $0.text, confidence: $0.confidence, box: down($0.box)) }, box: down(line.box))
        }
    }

    /// Where a picture (dark text on light) can be cut in two bands read apart: the middle of the
    /// longest run of blank rows (no pixel darker than 160) starting between 40 % and 60 % of its height, so no
    /// line of text is cut and the heading band (`SlideText.headingBand`) stays whole in the top one;
    /// nil when the middle has no blank row of a few pixels.
    static func cut(_ job: Job) -> Int? {
        let (w, h) = (job.width, job.height)
        let blank: (Int) -> Bool = { y in !job.pixels[(y * w)..<(y * w + w)].contains { $0 < 160 } }
        let lo = Int(Double(h) * SlideText.headingBand), hi = Int(Double(h) * 0.6)
        var best: Range<Int>?
        var y = lo
        while y < hi {
            guard blank(y) else { y += 1; continue }
            var end = y
            while end < h, blank(end) { end += 1 }
            if end - y > (best?.count ?? 0) { best = y..<end }
            y = end
        }
        guard let best, best.count >= max(3, h / 200) else { return nil }
        return (best.lowerBound + best.upperBound) / 2
    }

    /// Removes the waiting pictures.
    func abandon() {
        waiting = [:]
        try? FileManager.default.removeItem(at: spool)
    }

    static func isCJKModel(_ name: String) -> Bool {
        ["chi_sim", "chi_tra", "jpn", "kor", "HanS", "HanT", "Japanese", "Hangul"].contains { name == $0 || name.hasPrefix($0 + "_") }
            || name.hasPrefix("script/Han") || name == "script/Japanese" || name == "script/Hangul"
    }

    /// The heading of a slide in a CJK language, read on its own. Tesseract's page layout misses large
    /// CJK headings or cuts them apart at full size (and finds others only at half size), so up to three
    /// boxes are read alone: the tallest band of dark rows in the top of the slide (`inkBand`), the
    /// heading line of the slide's layout and that of a half-size layout. Readings Tesseract is less
    /// than `headingConfidence` sure of are dropped. The band's line wins when one of the boxes on it
    /// (overlapping it by half its height) has a reading, the surest of those; otherwise the surest
    /// reading of all.
    static func heading(of job: Job, lines: [TextLine], with reader: TextReader) throws -> String? {
        let band = inkBand(of: job)
        var boxes = band.map { [$0] } ?? []
        if let i = SlideText.heading(in: lines, height: job.height) { boxes.append(lines[i].box) }
        let (half, w, h) = shrink(job.pixels, stride: job.width, x0: 0, y0: 0, x1: job.width, y1: job.height, scale: 0.5)
        let halfLines = try half.withUnsafeBufferPointer { try reader.read($0.baseAddress!, width: w, height: h, stride: w) }
        if let i = SlideText.heading(in: halfLines, height: h) {
            let b = halfLines[i].box
            boxes.append(TextBox(x: b.x * job.width / w, y: b.y * job.height / h, width: b.width * job.width / w, height: b.height * job.height / h))
        }
        var readings: [(text: String, confidence: Double, box: TextBox)] = []
        for box in boxes {
            if let r = try readAlone(box, of: job, with: reader), r.confidence >= headingConfidence {
                readings.append((r.text, r.confidence, box))
            }
        }
        let onBand = readings.filter { r in
            guard let band else { return false }
            let overlap = min(r.box.y + r.box.height, band.y + band.height) - max(r.box.y, band.y)
            return 2 * overlap >= min(r.box.height, band.height)
        }
        return (onBand.isEmpty ? readings : onBand).max { $0.confidence < $1.confidence }?.text
    }

    /// The tallest band of rows holding dark pixels (the picture is dark text on white here) that
    /// starts in the top `SlideText.headingBand` of the picture, the topmost of those within 10% of the
    /// tallest, boxed around its dark pixels. Bands thinner than 1/100 of the picture (rules,
    /// underlines) are not lines.
    static func inkBand(of job: Job) -> TextBox? {
        let (w, h) = (job.width, job.height)
        let dark: (Int) -> Bool = { y in
            var n = 0
            for x in 0..<w where job.pixels[y * w + x] < 128 { n += 1; if n >= 2 { return true } }
            return false
        }
        let gap = max(1, h / 240), top = Int(Double(h) * SlideText.headingBand)
        var bands: [(Int, Int)] = []
        var y = 0
        while y < top {
            guard dark(y) else { y += 1; continue }
            var end = y + 1, blank = 0
            while end < h, blank <= gap {
                if dark(end) { blank = 0 } else { blank += 1 }
                end += 1
            }
            end -= blank
            if end - y >= max(2, h / 100) { bands.append((y, end)) }
            y = end + 1
        }
        guard let tallest = bands.map({ $1 - $0 }).max(), let (y0, y1) = bands.first(where: { Double($1 - $0) >= 0.9 * Double(tallest) }) else { return nil }
        var x0 = w, x1 = 0
        for y in y0..<y1 {
            for x in 0..<w where job.pixels[y * w + x] < 128 { x0 = min(x0, x); x1 = max(x1, x + 1) }
        }
        return x1 > x0 ? TextBox(x: x0, y: y0, width: x1 - x0, height: y1 - y0) : nil
    }

    /// Reads the line in `box` on its own: cut out with a third of its height around it, shrunk to
    /// `cjkHeadingHeight` pixels tall by area averaging, read as one line.
    static func readAlone(_ box: TextBox, of job: Job, with reader: TextReader) throws -> (text: String, confidence: Double)? {
        guard box.height > 0, box.width > 0 else { return nil }
        let pad = max(2, box.height / 3)
        let x0 = max(0, box.x - pad), y0 = max(0, box.y - pad)
        let x1 = min(job.width, box.x + box.width + pad), y1 = min(job.height, box.y + box.height + pad)
        guard x1 > x0, y1 > y0 else { return nil }
        let scale = min(1, Double(cjkHeadingHeight) / Double(box.height))
        let (pixels, w, h) = shrink(job.pixels, stride: job.width, x0: x0, y0: y0, x1: x1, y1: y1, scale: scale)
        let lines = try pixels.withUnsafeBufferPointer {
            try reader.read($0.baseAddress!, width: w, height: h, stride: w, singleLine: true)
        }
        return lines.first.flatMap(SlideText.line)
    }

    /// The rectangle (x0, y0)-(x1, y1) of a grey picture, scaled by `scale` (at most 1) with each
    /// output pixel the mean of the source area it covers.
    static func shrink(_ p: [UInt8], stride: Int, x0: Int, y0: Int, x1: Int, y1: Int, scale: Double) -> ([UInt8], Int, Int) {
        let (sw, sh) = (x1 - x0, y1 - y0)
        let (w, h) = (max(1, Int((Double(sw) * scale).rounded())), max(1, Int((Double(sh) * scale).rounded())))
        // Each output column's (or row's) source span, in source pixels with fractional edges.
        func spans(_ n: Int, _ source: Int) -> [[(Int, Double)]] {
            let step = Double(source) / Double(n)
            return (0..<n).map { i in
                let (a, b) = (Double(i) * step, Double(i + 1) * step)
                return (Int(a)..<min(source, Int(b.rounded(.up)))).map { s in
                    (s, min(b, Double(s + 1)) - max(a, Double(s)))
                }
            }
        }
        let (columns, rows) = (spans(w, sw), spans(h, sh))
        var across = [Double](repeating: 0, count: w * sh)
        for y in 0..<sh {
            let row = (y0 + y) * stride + x0
            for (x, span) in columns.enumerated() {
                var sum = 0.0, weight = 0.0
                for (s, wt) in span { sum += Double(p[row + s]) * wt; weight += wt }
                across[y * w + x] = sum / weight
            }
        }
        var out = [UInt8](repeating: 0, count: w * h)
        for (y, span) in rows.enumerated() {
            for x in 0..<w {
                var sum = 0.0, weight = 0.0
                for (s, wt) in span { sum += across[s * w + x] * wt; weight += wt }
                out[y * w + x] = UInt8(min(255, max(0, (sum / weight).rounded())))
            }
        }
        return (out, w, h)
    }
}

/// The next index of a list shared by the slide readers of `SlideReader.finish`.
private final class Counter: Sendable {
    private let value = Mutex(0)

    func take(below end: Int) -> Int? {
        value.withLock { value in
            guard value < end else { return nil }
            defer { value += 1 }
            return value
        }
    }
}

/// Work on a thread of its own whose result is waited for: one of the slide readers of
/// `SlideReader.finish`.
private final class ReadingThread<Value: Sendable>: @unchecked Sendable {
    // @unchecked Sendable: `result` is written by the thread before it signals and read after `wait`.
    private var result: Result<Value, any Error> = .failure(CancellationError())
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () throws -> Value) {
        let thread = Thread { [self] in
            result = Result { try work() }
            done.signal()
        }
        thread.name = "coursepack-ocr"
        thread.start()
    }

    func wait() -> Result<Value, any Error> {
        done.wait()
        return result
    }
}
