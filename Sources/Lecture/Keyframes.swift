import FFmpeg
import LectureModel

/// Decides, once for every rendition, which decoded pictures start a GOP, and marks them (a
/// keyframe request that references and scaled copies carry); every other picture's type is cleared
/// so the encoder never inherits the source's frame types.
///
/// Keyframe times fall every `keyframeSeconds` on the lecture's timeline. Those that start a segment
/// always get a keyframe: a segment must start with one (RFC 8216, Apple 7.4). A keyframe in the middle
/// of a segment only serves seeking and trick play, so with `minChange` above zero it is placed only
/// when at least that share of the picture changed since the last keyframe. On a slide with a small
/// speaker inset, or an editor where a line is typed, it would repeat the picture the player already
/// has at the cost of a full picture: with one every 2 s, keyframes were 93-94% of each rung's bytes on
/// the benchmark screencast.
struct KeyframePlanner {
    let keyframeSeconds: Double
    let segmentSeconds: Double
    /// Keyframe times per segment.
    let perSegment: Int
    /// Two short segments open the lecture (`LadderPlan.leadSegmentSeconds`): keyframe times are 0,
    /// `lead`, `2 * lead`, then every `keyframeSeconds` after it.
    let lead: Double?
    /// Share of the picture (0...1) that must have changed since the last keyframe for a keyframe
    /// inside a segment; 0 places every one.
    let minChange: Double
    /// A cell of the small grey picture counts as changed when its mean moves by more than this.
    static let cellThreshold = 6.0

    private var nextIndex = 0
    private var reference: [Double]?
    private var probe = CellProbe()
    private(set) var placed = 0
    private(set) var skipped = 0

    init(segmentSeconds: Double, keyframeSeconds: Double, minChange: Double, lead: Double? = nil) {
        self.keyframeSeconds = keyframeSeconds
        self.segmentSeconds = segmentSeconds
        perSegment = max(1, Int((segmentSeconds / keyframeSeconds).rounded()))
        self.minChange = minChange
        self.lead = lead
    }

    /// Seconds from the lecture's start of keyframe time `index`.
    func time(of index: Int) -> Double {
        guard let lead else { return Double(index) * keyframeSeconds }
        return index <= 2 ? Double(index) * lead : 2 * lead + Double(index - 2) * keyframeSeconds
    }

    /// The last keyframe time at or before `time`.
    func index(at time: Double) -> Int {
        guard let lead else { return Int(((time + 1e-4) / keyframeSeconds).rounded(.down)) }
        if time + 1e-4 < 2 * lead { return time + 1e-4 < lead ? 0 : 1 }
        return 2 + Int(((time - 2 * lead + 1e-4) / keyframeSeconds).rounded(.down))
    }

    /// Segments start at 0, `lead`, `2 * lead`, then at the first keyframe time at or past `lead + k *
    /// segmentSeconds` (k = 1, 2, ...): that is where libavformat's HLS muxer (`hls_init_time` = lead)
    /// cuts, at the first keyframe at or past `lead`, `2 * lead`, then `lead + segmentSeconds`, `lead + 2 *
    /// segmentSeconds`, ... No keyframe time falls between such a cut time and the segment start here,
    /// so keyframes for changes may go anywhere. With 0.5-s leads the starts are 0, 0.5, 1, 7, 13, ...;
    /// with 2-s leads on a 2-s keyframe grid 0, 2, 4, 8, 14, ... (segments of 2, 2, 4, then 6 s).
    func startsSegment(_ index: Int) -> Bool {
        guard let lead else { return index % perSegment == 0 }
        if index <= 2 { return true }
        return cutsPassed(by: time(of: index), lead: lead) > cutsPassed(by: time(of: index - 1), lead: lead)
    }

    /// How many of the muxer's cut times after the leads (`lead + k * segmentSeconds`, k >= 1) are at or
    /// before `time`.
    private func cutsPassed(by time: Double, lead: Double) -> Int {
        max(0, Int(((time - lead + 1e-4) / segmentSeconds).rounded(.down)))
    }

    /// Marks `frame`, at `time` seconds from the lecture's start, as a keyframe or not.
    mutating func mark(_ frame: Frame, at time: Double) throws {
        guard time >= self.time(of: nextIndex) - 1e-4 else {
            frame.clearPictureType()
            return
        }
        // The first picture at or after one or more keyframe times (a gap can pass several).
        let index = max(nextIndex, self.index(at: time))
        let startsSegment = (nextIndex...index).contains { self.startsSegment($0) }
        nextIndex = index + 1
        let cells = minChange > 0 ? try probe.cells(frame) : nil
        if startsSegment || minChange == 0 || changedShare(cells, reference) >= minChange {
            frame.requestKeyframe()
            reference = cells
            placed += 1
        } else {
            frame.clearPictureType()
            skipped += 1
        }
    }

    /// Share of cells whose mean brightness moved by more than `cellThreshold`; 1 when either is unknown.
    func changedShare(_ a: [Double]?, _ b: [Double]?) -> Double {
        guard let a, let b, a.count == b.count, !a.isEmpty else { return 1 }
        let changed = zip(a, b).reduce(0) { $0 + (abs($1.0 - $1.1) > Self.cellThreshold ? 1 : 0) }
        return Double(changed) / Double(a.count)
    }
}

/// Cell means of a decoded picture, through a 128x72 grey copy cut into 4x4-pixel cells (averaging
/// over a cell removes camera noise); the scaler is remade when the picture changes shape.
struct CellProbe {
    static let width = 128, height = 72, cell = 4
    private var scaler: Scaler?

    mutating func cells(_ frame: Frame) throws -> [Double]? {
        if scaler == nil || scaler!.sourceMatches(frame) == false {
            scaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                width: Self.width, height: Self.height, pixelFormat: .gray)
        }
        return try scaler!.scale(frame).withLuma { Self.cells($0, stride: $1) }
    }

    /// Cell means of a grey picture given as rows of bytes.
    static func cells(_ pixels: UnsafePointer<UInt8>, stride: Int) -> [Double] {
        let cols = width / cell
        var out = [Double](repeating: 0, count: cols * (height / cell))
        for y in 0..<height {
            for x in 0..<width {
                out[(y / cell) * cols + x / cell] += Double(pixels[y * stride + x])
            }
        }
        return out.map { $0 / Double(cell * cell) }
    }
}
