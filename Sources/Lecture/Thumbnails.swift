import Foundation
import LectureModel
import FFmpeg

/// Poster and seek-preview storyboard from the same decoded frames as the renditions.
final class ThumbnailBranch: Branch {
    let name = "thumbnails"
    private let directory: URL
    private let duration: Double
    private let posterSize: (Int, Int)
    // Poster: candidates spread over the first fifth, the most detailed one that is not black.
    private let candidateTimes: [Double]
    private var nextCandidate = 0
    private var best: (frame: Frame, score: Double, time: Double)?
    private var probe: Scaler?
    // Storyboard.
    let interval: Double
    let tile: (Int, Int)
    private let columns = 10, rows = 10
    private var tileScaler: Scaler?
    private var sheet: Frame?
    private var tilesInSheet = 0
    private var cues: [String] = []
    private var sprites: [String] = []
    private var nextTile = 0.0
    private(set) var summary: ThumbnailSummary?

    /// - Parameters:
    ///   - posterSize: size of the large poster (the top rendition's).
    ///   - displayAspect: width / height as shown.
    init(directory: URL, duration: Double, posterSize: (Int, Int), displayAspect: Double) throws {
        self.directory = directory
        self.duration = duration
        self.posterSize = posterSize
        let firstFifth = max(1, duration / 5)
        candidateTimes = (0..<12).map { firstFifth * (Double($0) + 0.5) / 12 }
        // About 150 tiles whatever the length, at least one second apart.
        interval = max(1, (duration / 150).rounded(.up))
        let w = 160
        tile = (w, max(2, Int((Double(w) / displayAspect / 2).rounded()) * 2))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    func consume(_ frame: Frame) throws {
        guard let t = frame.time else { return }
        if nextCandidate < candidateTimes.count, t >= candidateTimes[nextCandidate] {
            while nextCandidate < candidateTimes.count, t >= candidateTimes[nextCandidate] { nextCandidate += 1 }
            try consider(frame, at: t)
        }
        if t >= nextTile - 1e-6 {
            try addTile(frame, at: t)
            nextTile = (t / interval).rounded(.down) * interval + interval
        }
    }

    /// Detail = mean absolute difference between neighbouring pixels of a small grey copy; a black or
    /// faded picture scores low, a full slide or a face in focus high.
    private func consider(_ frame: Frame, at t: Double) throws {
        if probe == nil || probe!.sourceMatches(frame) == false {
            probe = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                               width: 160, height: 90, pixelFormat: .gray)
        }
        let small = try probe!.scale(frame)
        let (mean, detail) = small.withLuma { p, stride -> (Double, Double) in
            var sum = 0, grad = 0
            for y in 0..<89 {
                for x in 0..<159 {
                    let v = Int(p[y * stride + x])
                    sum += v
                    grad += abs(v - Int(p[y * stride + x + 1])) + abs(v - Int(p[(y + 1) * stride + x]))
                }
            }
            return (Double(sum) / (89 * 159), Double(grad) / (89 * 159))
        } ?? (0, 0)
        let score = mean < 24 ? 0 : detail
        if best == nil || score > best!.score {
            best = (frame.reference(), score, t)
        }
    }

    private func addTile(_ frame: Frame, at t: Double) throws {
        if tileScaler == nil || tileScaler!.sourceMatches(frame) == false {
            tileScaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                    width: tile.0, height: tile.1, pixelFormat: .yuvj420p)
        }
        if sheet == nil {
            sheet = try Frame.picture(width: tile.0 * columns, height: tile.1 * rows, format: .yuvj420p)
            tilesInSheet = 0
        }
        let x = (tilesInSheet % columns) * tile.0, y = (tilesInSheet / columns) * tile.1
        try tileScaler!.scale(frame, into: sheet!, x: x, y: y)
        let start = cues.count == 0 ? 0 : (t / interval).rounded(.down) * interval
        cues.append("\(vttTimestamp(start)) --> \(vttTimestamp(min(duration, start + interval)))\nsprite-\(String(format: "%03d", sprites.count)).jpg#xywh=\(x),\(y),\(tile.0),\(tile.1)")
        tilesInSheet += 1
        if tilesInSheet == columns * rows { try flushSheet() }
    }

    private func flushSheet() throws {
        guard let s = sheet, tilesInSheet > 0 else { return }
        let name = "sprite-\(String(format: "%03d", sprites.count)).jpg"
        // A sheet that is not full is cropped to the rows it uses.
        let usedRows = (tilesInSheet + columns - 1) / columns
        if usedRows < rows { try s.cropBottom(toHeight: usedRows * tile.1) }
        try OutputFile.write(Encoder.jpeg(s, qscale: 4), to: directory.appendingPathComponent(name))
        sprites.append(name)
        sheet = nil
        tilesInSheet = 0
    }

    func finish() throws {
        try flushSheet()
        let vtt = "WEBVTT\n\n" + cues.joined(separator: "\n\n") + "\n"
        try OutputFile.write(vtt, to: directory.appendingPathComponent("storyboard.vtt"))
        var poster: ThumbnailSummary.Poster?
        if let best {
            let f = best.frame
            for (name, w, h) in [("poster.jpg", posterSize.0, posterSize.1),
                                 ("poster-320.jpg", 320, max(2, Int((320.0 * Double(posterSize.1) / Double(posterSize.0) / 2).rounded()) * 2))] {
                let s = try Scaler(sourceWidth: f.width, sourceHeight: f.height, sourceFormat: f.pixelFormat,
                                   width: w, height: h, pixelFormat: .yuvj420p)
                try OutputFile.write(Encoder.jpeg(try s.scale(f), qscale: 2), to: directory.appendingPathComponent(name))
            }
            poster = .init(full: "thumbs/poster.jpg", small: "thumbs/poster-320.jpg", time: (best.time * 1000).rounded() / 1000)
        }
        summary = ThumbnailSummary(poster: poster, storyboard: "thumbs/storyboard.vtt", sprites: sprites.map { "thumbs/\($0)" },
                                   tileWidth: tile.0, tileHeight: tile.1, interval: interval, tiles: cues.count)
    }
}
