import Foundation
import LectureModel
import FFmpeg

/// Runs the slide-change detector on the decoded frames, keeps one full-resolution still per chapter
/// (retaken when the slide builds up) and hands each chapter's final still to the slide reader, which
/// reads them all once the rungs have ended.
final class ChapterBranch: Branch {
    let name = "chapters"
    private let directory: URL
    private let duration: Double
    private let stillSize: (Int, Int)
    private let lightSize: (Int, Int)
    private var detector = SlideChangeDetector()
    private var analysisScaler: Scaler?
    private var stillScaler: Scaler?
    private var lightScaler: Scaler?
    private var nextSample = 0.0
    private let sampleInterval = 0.2
    /// Still file of each chapter so far.
    private var stills: [String] = []
    /// The current chapter's still as a grey picture at most 1280x720, not yet handed to the reader,
    /// and when it was taken. It is handed on (made ready for OCR with the detector's busy cells of
    /// that moment) once it has stood for `readAfter` seconds (a later build retakes it and hands it
    /// on again), or when the chapter or the lecture ends.
    private var pendingText: Frame?
    private var pendingSince = 0.0
    static let readAfter = 5.0
    private var ocrScaler: Scaler?
    private let ocrSize: (Int, Int)
    private var firstSlideSeen = false
    private let reader: SlideReader?
    private(set) var chapters: [Chapter] = []

    /// `languages`: Tesseract's language list for the slide text; nil reads no text.
    init(directory: URL, duration: Double, stillSize: (Int, Int), languages: String?) throws {
        self.directory = directory
        self.duration = duration
        self.stillSize = stillSize
        lightSize = ChapterBranch.lightSize(of: stillSize)
        ocrSize = ChapterBranch.ocrSize(of: stillSize)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        reader = try languages.map { try SlideReader(languages: $0, spool: directory.appendingPathComponent(".slide-text")) }
    }

    deinit { reader?.abandon() }

    func consume(_ frame: Frame) throws {
        guard let t = frame.time, t >= nextSample - 1e-6 else { return }
        nextSample = t + sampleInterval
        guard let picture = try analysisPicture(frame) else { return }
        switch detector.add(picture, at: t) {
        case .newChapter?:
            try sendPendingText()
            try writeStill(frame, chapter: stills.count)
        case .retract?:
            // The chapter's still files are rewritten by the next chapter, or removed at the end.
            stills.removeLast()
            pendingText = nil
        case .retakeStill?, .firstSlide?:
            try writeStill(frame, chapter: max(0, stills.count - 1))
            firstSlideSeen = true
        case nil:
            // Until a slide settles, the first chapter's still is the picture one second in.
            if stills.isEmpty && !firstSlideSeen && t >= min(1, duration / 2) {
                try writeStill(frame, chapter: 0)
            }
        }
        if pendingText != nil && t - pendingSince >= Self.readAfter { try sendPendingText() }
    }

    /// The detector's grey copy of the picture.
    private func analysisPicture(_ frame: Frame) throws -> [UInt8]? {
        let (w, h) = (SlideChangeDetector.width, SlideChangeDetector.height)
        if analysisScaler == nil || analysisScaler!.sourceMatches(frame) == false {
            // Area averaging: Lanczos from 1080p spans 36 source pixels each way here, about 1 s of CPU
            // for a minute of 1080p at 5 pictures a second against 0.4 s; the chapters found on the
            // generated lectures did not change (BENCHMARKS.md, 2026-12-02).
            analysisScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                        width: w, height: h, pixelFormat: .gray, kernel: .area)
        }
        return try analysisScaler!.scale(frame).withLuma { bytes, stride in
            var out = [UInt8](repeating: 0, count: w * h)
            for y in 0..<h { for x in 0..<w { out[y * w + x] = bytes[y * stride + x] } }
            return out
        }
    }

    /// Writes (or rewrites) chapter `chapter`'s still and light still, and keeps its grey copy for OCR.
    private func writeStill(_ frame: Frame, chapter: Int) throws {
        if stillScaler == nil || stillScaler!.sourceMatches(frame) == false {
            stillScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                     width: stillSize.0, height: stillSize.1, pixelFormat: .yuvj420p)
        }
        let name = String(format: "chapter-%03d.jpg", chapter + 1)
        let still = try stillScaler!.scale(frame)
        try OutputFile.write(Encoder.jpeg(still, qscale: 2), to: directory.appendingPathComponent(name))
        if lightScaler == nil || lightScaler!.sourceMatches(frame) == false {
            lightScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                     width: lightSize.0, height: lightSize.1, pixelFormat: .yuv420p)
        }
        try OutputFile.write(Encoder.webp(try lightScaler!.scale(frame), quality: Self.lightQuality),
                             to: directory.appendingPathComponent(Self.lightName(name)))
        if chapter == stills.count { stills.append(name) }
        if reader != nil {
            if ocrScaler == nil || ocrScaler!.sourceMatches(frame) == false {
                ocrScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                       width: ocrSize.0, height: ocrSize.1, pixelFormat: .gray)
            }
            pendingText = try ocrScaler!.scale(frame)
            pendingSince = frame.time ?? 0
        }
    }

    /// The size OCR reads a still at: within 1280x720 (or 720x1280), keeping its aspect. Slide text
    /// stays well above the 20 px Tesseract needs, and a 1080p screen of small text reads in half the
    /// time (BENCHMARKS.md, "Chapters").
    static func ocrSize(of size: (Int, Int)) -> (Int, Int) {
        let (long, short) = size.0 >= size.1 ? (1280.0, 720.0) : (720.0, 1280.0)
        let scale = min(1, long / Double(size.0), short / Double(size.1))
        let even = { (x: Int) in max(2, Int((Double(x) * scale / 2).rounded()) * 2) }
        return (even(size.0), even(size.1))
    }

    /// A grey copy of the still for OCR: the detector's busy cells (a camera inset, an animation)
    /// painted over in the picture's commonest grey, so OCR reads the slide and not the speaker; and
    /// every row whose middle grey is dark inverted, so light text on a dark title bar or a dark theme
    /// reads as dark on light (Tesseract finds no lines in a white-on-blue title bar otherwise), with
    /// each row's background stretched to white (a grey title bar hid Chinese headings from it).
    private func pictureForOCR(_ bytes: UnsafePointer<UInt8>, stride: Int, width: Int, height: Int) -> (pixels: [UInt8], width: Int, height: Int) {
        var out = [UInt8](repeating: 0, count: width * height)
        var histogram = [Int](repeating: 0, count: 256)
        for y in 0..<height {
            for x in 0..<width {
                let v = bytes[y * stride + x]
                out[y * width + x] = v
                histogram[Int(v)] += 1
            }
        }
        let background = UInt8(histogram.indices.max { histogram[$0] < histogram[$1] }!)
        let busy = detector.busyCells
        let (cols, rows) = (SlideChangeDetector.cols, SlideChangeDetector.rows)
        for r in 0..<rows {
            for c in 0..<cols where busy[r * cols + c] {
                let x0 = c * width / cols, x1 = (c + 1) * width / cols
                for y in (r * height / rows)..<((r + 1) * height / rows) {
                    for x in x0..<x1 { out[y * width + x] = background }
                }
            }
        }
        // Bars of one colour around the slide (4:3 in 16:9, pillarboxes) are cut off: their edges read as
        // tall marks that crowd out the heading.
        let (x0, x1, y0, y1) = Self.content(out, width: width, height: height)
        if (x0, x1, y0, y1) != (0, width, 0, height) {
            var cropped = [UInt8](repeating: 0, count: (x1 - x0) * (y1 - y0))
            for y in y0..<y1 { for x in x0..<x1 { cropped[(y - y0) * (x1 - x0) + x - x0] = out[y * width + x] } }
            out = cropped
        }
        let width = x1 - x0, height = y1 - y0
        // Each row's middle grey, then whether the rows around it (±24) are mostly dark: a band as
        // tall as a title bar is, one row through bold letters is not.
        var medians = [Int](repeating: 255, count: height)
        var counts = [Int](repeating: 0, count: 256)
        for y in 0..<height {
            for i in counts.indices { counts[i] = 0 }
            for x in 0..<width { counts[Int(out[y * width + x])] += 1 }
            var seen = 0, median = 0
            while seen + counts[median] <= width / 2 { seen += counts[median]; median += 1 }
            medians[y] = median
        }
        for y in 0..<height {
            let around = medians[max(0, y - 24)..<min(height, y + 25)]
            let dark = around.filter { $0 < 128 }.count * 2 > around.count
            // The row's paper: its middle grey when that is on the band's side (a row through bold
            // letters has no paper of its own and is left as it is).
            let m = medians[y]
            let paper = dark ? (m < 128 ? 255 - m : 255) : (m >= 128 ? m : 255)
            for x in 0..<width {
                let v = Int(out[y * width + x])
                // Light text on dark turns dark on light, and the row's background is stretched to white.
                out[y * width + x] = UInt8(max(0, min(255, (dark ? 255 - v : v) * 255 / paper)))
            }
        }
        return (out, width, height)
    }

    /// The picture without the bars of a letterbox or pillarbox: [x0, x1) x [y0, y1). Bars are runs of
    /// uniform columns (rows) at both opposite edges, of about the same width; a title bar at the top
    /// alone is part of the slide.
    static func content(_ p: [UInt8], width: Int, height: Int) -> (Int, Int, Int, Int) {
        func uniform(_ values: some Sequence<UInt8>) -> Bool {
            var lo = UInt8.max, hi = UInt8.min
            for v in values { lo = min(lo, v); hi = max(hi, v) }
            return Int(hi) - Int(lo) <= 16
        }
        func bars(_ n: Int, _ isUniform: (Int) -> Bool) -> (Int, Int) {
            var a = 0, b = n
            while b - a > n / 4, isUniform(a) { a += 1 }
            while b - a > n / 4, isUniform(b - 1) { b -= 1 }
            let (lead, trail) = (a, n - b)
            let symmetric = min(lead, trail) >= n / 50 && abs(lead - trail) * 10 <= max(lead, trail)
            return symmetric ? (a, b) : (0, n)
        }
        let (x0, x1) = bars(width) { x in uniform((0..<height).lazy.map { p[$0 * width + x] }) }
        let (y0, y1) = bars(height) { y in uniform(p[(y * width)..<(y * width + width)]) }
        return (x0, x1, y0, y1)
    }

    private func sendPendingText() throws {
        guard let frame = pendingText, let reader, !stills.isEmpty,
              let p = frame.withLuma({ pictureForOCR($0, stride: $1, width: frame.width, height: frame.height) }) else { return }
        try reader.read(chapter: stills.count - 1, pixels: p.pixels, width: p.width, height: p.height)
        pendingText = nil
    }

    /// libwebp quality of the light stills: a 640x360 slide of the bench lecture is about 8 KB at 30
    /// (9.8 KB at 50, 16.5 KB as a JPEG at qscale 8) and Tesseract still reads every word of it, so 45
    /// minutes of Opus speech with a still every 15 s stay under 8 MB (BENCHMARKS.md, "Weak links").
    static let lightQuality = 30

    static func lightName(_ still: String) -> String { String(still.dropLast(4)) + ".webp" }

    /// The light still's size: the still's aspect, short side at most 360 px, even dimensions.
    static func lightSize(of size: (Int, Int)) -> (Int, Int) {
        let short = min(size.0, size.1)
        guard short > 360 else { return size }
        let scale = 360.0 / Double(short)
        let even = { (x: Int) in max(2, Int((Double(x) * scale / 2).rounded()) * 2) }
        return (even(size.0), even(size.1))
    }

    func finish() throws {
        try sendPendingText()
        // A still left by a withdrawn last chapter.
        let stale = String(format: "chapter-%03d.jpg", stills.count + 1)
        for name in [stale, Self.lightName(stale)] { try? FileManager.default.removeItem(at: directory.appendingPathComponent(name)) }
        let texts = try reader?.finish() ?? [:]
        let starts = detector.starts
        let ms = { (t: Double) in (t * 1000).rounded() / 1000 }
        chapters = starts.indices.map { i in
            let file = i < stills.count ? stills[i] : stills.last
            let read = texts[i]
            let title = read?.title
            return Chapter(index: i + 1, start: ms(starts[i]), end: i + 1 < starts.count ? ms(starts[i + 1]) : ms(duration),
                           title: title ?? "Chapter \(i + 1)", titleSource: title == nil ? "number" : "slide", text: read?.text ?? "",
                           still: "chapters/" + (file ?? ""), lightStill: file.map { "chapters/" + Self.lightName($0) })
        }
        var vtt = "WEBVTT\n"
        for c in chapters {
            vtt += "\n\(vttTimestamp(c.start)) --> \(vttTimestamp(c.end))\n\(vttText(c.title))\n"
        }
        try OutputFile.write(vtt, to: directory.appendingPathComponent("chapters.vtt"))
    }
}
