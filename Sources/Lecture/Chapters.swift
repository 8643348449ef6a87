public import Foundation
import FFmpeg

/// Finds slide changes in a stream of small grey pictures (`ChapterDetector.width` x `height`).
///
/// The picture is cut into 4x4-pixel cells. A cell counts as changed when its mean brightness moves
/// by more than `cellThreshold` levels; averaging over the cell removes camera noise. Cells that
/// keep changing (a talking head in a picture-in-picture corner, a moving pointer) are learned as
/// busy and left out. A slide change is a large share of the quiet cells differing from the last
/// settled picture, followed by the picture settling again, so a gradual fade counts once.
public struct ChapterDetector: Sendable {
    public static let width = 128, height = 72
    static let cell = 4
    static let cols = width / cell, rows = height / cell

    public var cellThreshold = 6.0
    /// Share of the quiet cells that must differ from the settled picture: 1.5% is about nine 10x10
    /// pixel cells of a 720p slide, enough for a changed title, more than a pointer's trail.
    public var changeShare = 0.015
    /// Share of quiet cells still moving below which the picture counts as settled.
    public var settledShare = 0.02
    /// Seconds the picture must stay settled before a change is accepted.
    public var settleSeconds = 0.5
    /// Minimum chapter length in seconds.
    public var minimumChapter = 10.0

    private var previous: [Double]?
    private var reference: [Double]?
    private var activity = [Double](repeating: 0, count: cols * rows)
    private var changeStart: Double?
    private var settledSince: Double?
    private var lastTime: Double?
    /// Start times of chapters found so far; the first chapter starts at 0.
    public private(set) var starts: [Double] = [0]

    public init() {}

    /// Cell means of a grey picture given as rows of bytes.
    public static func cells(_ pixels: UnsafePointer<UInt8>, stride: Int) -> [Double] {
        var out = [Double](repeating: 0, count: cols * rows)
        for y in 0..<height {
            for x in 0..<width {
                out[(y / cell) * cols + x / cell] += Double(pixels[y * stride + x])
            }
        }
        return out.map { $0 / Double(cell * cell) }
    }

    /// Feeds the cell means of the picture at `time`; returns the start time of a new chapter when
    /// this picture confirms one.
    public mutating func add(_ cells: [Double], at time: Double) -> Double? {
        defer { previous = cells; lastTime = time }
        guard let prev = previous, let ref = reference else {
            previous = cells
            reference = cells
            return nil
        }
        var moving = [Bool](repeating: false, count: cells.count)
        for i in cells.indices {
            moving[i] = abs(cells[i] - prev[i]) > cellThreshold
            activity[i] = 0.9 * activity[i] + 0.1 * (moving[i] ? 1 : 0)
        }
        let quiet = cells.indices.filter { activity[$0] < 0.3 }
        guard !quiet.isEmpty else { return nil }
        let movingShare = Double(quiet.filter { moving[$0] }.count) / Double(quiet.count)
        let differShare = Double(quiet.filter { abs(cells[$0] - ref[$0]) > cellThreshold }.count) / Double(quiet.count)

        if differShare < changeShare && movingShare < settledShare {
            // Settled on the same slide: follow slow drifts (lighting, a speaker edging across).
            reference = cells
        }
        if differShare >= changeShare {
            if changeStart == nil { changeStart = lastTime.map { ($0 + time) / 2 } ?? time }
        } else if movingShare < settledShare {
            // Back to the settled picture (a flicker, or a fade that came back): no change.
            changeStart = nil
        }
        if movingShare < settledShare {
            if settledSince == nil { settledSince = time }
        } else {
            settledSince = nil
        }
        guard let start = changeStart, let since = settledSince, time - since >= settleSeconds, differShare >= changeShare else {
            return nil
        }
        reference = cells
        changeStart = nil
        if start - starts.last! < minimumChapter { return nil }
        starts.append(start)
        return start
    }
}

/// One chapter of the lecture.
public struct Chapter: Sendable, Codable {
    public var index: Int
    public var start: Double
    public var end: Double
    /// The slide as it settled, at the source's full resolution.
    public var still: String
    /// The same slide small and light (WebP, short side at most 360 px) for the slides + audio lecture
    /// on 2G links.
    public var lightStill: String?
}

/// Cell means (`ChapterDetector.cells`) of a decoded picture, through a grey copy at the detector's
/// size; the scaler is remade when the picture changes shape.
struct CellProbe {
    private var scaler: Scaler?

    mutating func cells(_ frame: Frame) throws -> [Double]? {
        if scaler == nil || scaler!.sourceMatches(frame) == false {
            scaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                width: ChapterDetector.width, height: ChapterDetector.height, pixelFormat: .gray)
        }
        return try scaler!.scale(frame).withLuma { ChapterDetector.cells($0, stride: $1) }
    }
}

/// Runs the slide-change detector on the decoded frames and keeps one full-resolution still per chapter.
final class ChapterBranch: Branch {
    let name = "chapters"
    private let directory: URL
    private let duration: Double
    private let stillSize: (Int, Int)
    private let lightSize: (Int, Int)
    private var detector = ChapterDetector()
    private var probe = CellProbe()
    private var stillScaler: Scaler?
    private var lightScaler: Scaler?
    private var nextSample = 0.0
    private let sampleInterval = 0.2
    private var stills: [(time: Double, file: String)] = []
    private var pendingStill = true
    private var sinceChange = 0.0
    private(set) var chapters: [Chapter] = []

    init(directory: URL, duration: Double, stillSize: (Int, Int)) throws {
        self.directory = directory
        self.duration = duration
        self.stillSize = stillSize
        lightSize = ChapterBranch.lightSize(of: stillSize)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func consume(_ frame: Frame) throws {
        guard let t = frame.time, t >= nextSample - 1e-6 else { return }
        nextSample = t + sampleInterval
        guard let cells = try probe.cells(frame) else { return }
        if detector.add(cells, at: t) != nil {
            pendingStill = true
        }
        // The still of a chapter is taken once its slide has settled: at the first sample after the
        // detector confirmed it (or, for the first chapter, one second in).
        if pendingStill && (stills.isEmpty ? t >= min(1, duration / 2) : true) {
            try writeStill(frame, at: t)
            pendingStill = false
        }
    }

    private func writeStill(_ frame: Frame, at t: Double) throws {
        if stillScaler == nil || stillScaler!.sourceMatches(frame) == false {
            stillScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                     width: stillSize.0, height: stillSize.1, pixelFormat: .yuvj420p)
        }
        let name = String(format: "chapter-%03d.jpg", stills.count + 1)
        try Encoder.writeJPEG(try stillScaler!.scale(frame), to: directory.appendingPathComponent(name).path, qscale: 2)
        if lightScaler == nil || lightScaler!.sourceMatches(frame) == false {
            lightScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                     width: lightSize.0, height: lightSize.1, pixelFormat: .yuv420p)
        }
        try Encoder.writeWebP(try lightScaler!.scale(frame), to: directory.appendingPathComponent(Self.lightName(name)).path,
                              quality: Self.lightQuality)
        stills.append((t, name))
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
        let starts = detector.starts
        chapters = starts.indices.map { i in
            Chapter(index: i + 1, start: (starts[i] * 1000).rounded() / 1000,
                    end: i + 1 < starts.count ? (starts[i + 1] * 1000).rounded() / 1000 : (duration * 1000).rounded() / 1000,
                    still: "chapters/" + (i < stills.count ? stills[i].file : stills.last?.file ?? ""),
                    lightStill: (i < stills.count ? stills[i].file : stills.last?.file).map { "chapters/" + Self.lightName($0) })
        }
        var vtt = "WEBVTT\n"
        for c in chapters {
            vtt += "\n\(vttTimestamp(c.start)) --> \(vttTimestamp(c.end))\nChapter \(c.index)\n"
        }
        try vtt.write(to: directory.appendingPathComponent("chapters.vtt"), atomically: false, encoding: .utf8)
    }
}

func vttTimestamp(_ t: Double) -> String {
    let ms = Int((max(0, t) * 1000).rounded())
    return String(format: "%02d:%02d:%02d.%03d", ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000)
}
