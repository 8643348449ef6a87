import Foundation

/// Finds slide changes in a stream of grey analysis pictures (`width` x `height`, one byte a pixel),
/// sampled a few times a second. What counts as a new chapter is set out in docs/CHAPTERS.md; in short:
///
/// - The picture is judged in 10x10-pixel cells of a 320x180 copy (a cell is 40x40 pixels of a 720p
///   source, so a changed word of 30 px text changes several cells). A cell differs from another
///   picture when at least `cellPixels` of its pixels moved by more than `pixelThreshold` grey levels.
/// - Cells that keep changing on their own are *busy* and left out: a camera inset, an animated
///   figure, a pointer's path. A cell turns busy when it moved in two samples within a few seconds
///   while most of the picture stood still, and stays busy for `busyHold` seconds after that.
///   Whole-picture changes (a new slide, a fade, a full-screen camera) teach nothing.
/// - The picture *settles* when almost none of its quiet cells move; once it has stayed settled for
///   `settleSeconds` it is compared with the chapter's slide as it last settled (the reference):
///   - fewer than `minChangedCells` cells differ, counting only differences larger than a pointer
///     (2x2 cells): the same slide (a pointer stopped, the speaker walked past);
///   - the picture is not slide-like (too few flat cells: a full-screen camera): the chapter goes on,
///     and the reference is kept, so coming back to the same slide starts nothing;
///   - every differing cell was blank on the reference: a build (a bullet appeared), the same chapter
///     with a fuller still;
///   - the picture is the reference moved up or down: scrolling, the same chapter;
///   - otherwise a new chapter, starting at the first slide-like picture of the change (a cut, the
///     start of a fade or wipe, the first picture back from the camera).
public struct SlideChangeDetector: Sendable {
    public static let width = 320, height = 180
    static let cell = 10
    public static let cols = width / cell, rows = height / cell

    public var pixelThreshold = 20
    public var cellPixels = 3
    /// Seconds the picture must stay settled before it is judged.
    public var settleSeconds = 0.6
    /// Changed cells (outside pointer-sized specks) that make a new slide.
    public var minChangedCells = 3
    /// Minimum chapter length in seconds: a change sooner than this after the last one replaces its
    /// still instead of starting a chapter.
    public var minimumChapter = 4.0
    /// Seconds a busy cell stays left out after it last moved on its own.
    public var busyHold = 30.0
    /// Half-life in seconds of a cell's count of recent moves.
    public var moveHalfLife = 5.0
    /// A sample whose moving cells are under this share of the picture is local motion, which teaches
    /// the busy cells; above it the picture is changing as a whole.
    public var localShare = 0.15
    /// A cell is flat when its grey levels span at most this; a picture is slide-like when at least
    /// `flatShare` of its cells are flat.
    public var flatRange = 10
    public var flatShare = 0.3
    /// A cell holds sharp edges (text, a diagram's lines) when at least 3 of its pixels differ from their
    /// left neighbour by more than 40 levels; a slide has them in at least `edgeShare` of its cells,
    /// camera footage (smooth, even when its walls are flat) far fewer.
    public var edgeShare = 0.05
    /// Share of cells spanning at most 3 grey levels above which a picture with a few edged cells is a
    /// (sparse) slide: a slide's background is that even, a camera's flat wall is not.
    public var sparseFlatShare = 0.75

    /// What a judged picture means for the chapters.
    public enum Decision: Sendable, Equatable {
        /// A new chapter starting at this time; take its still now.
        case newChapter(start: Double)
        /// The same chapter, now showing more (a build) or replaced by a slide shown too soon after
        /// the last change: retake its still.
        case retakeStill
        /// The first slide-like picture of the lecture has settled: the first chapter's still.
        case firstSlide
        /// The last new chapter was not one: what changed has since turned out to be busy (a camera
        /// inset's cut before the inset was known). The chapter before it goes on.
        case retract
    }

    /// Seconds after a new chapter during which it is withdrawn if the cells that made it turn busy.
    public var confirmSeconds = 8.0
    private var pending: Pending?
    /// The last new chapter while it can still be withdrawn; `replaced` is the one it took the place of
    /// (too soon after it), which comes back if this one is withdrawn.
    private struct Pending: Sendable {
        var start: Double
        var cells: [Int]
        var until: Double
        var replaced: (start: Double, cells: [Int], until: Double)?
    }

    private var previous: [UInt8]?
    private var reference: [UInt8]?
    private var moves = [Double](repeating: 0, count: cols * rows)
    private var busyUntil = [Double](repeating: -1, count: cols * rows)
    private var lastTime: Double?
    private var settledSince: Double?
    private var judged = false
    /// The first slide-like picture of the current unsettled stretch.
    private var changeStart: Double?
    private var unsettled = false
    /// Start times of chapters found so far; the first chapter starts at 0.
    public private(set) var starts: [Double] = [0]

    public init() {}

    /// Cells that moved in the current unsettled stretch, not yet learned.
    private var runMoves = [Double](repeating: 0, count: cols * rows)
    private var runBegan: Double?
    private var runGlobal = false

    /// Learns busy cells from local motion. The moves of an unsettled stretch are learned when it
    /// ends, or after 2 s while it lasts, unless at some sample most of the picture moved (a fade, a
    /// wipe, a new slide, a camera): those teach nothing, though text cells flicker through them.
    private mutating func learn(_ moving: [Bool], settled: Bool, at time: Double, overSlide: Bool) {
        let local = overSlide && Double(moving.lazy.filter { $0 }.count) < localShare * Double(moving.count)
        func commit(_ m: [Double]) {
            for i in m.indices where m[i] > 0 {
                moves[i] += m[i]
                if moves[i] >= 1.5 { busyUntil[i] = time + busyHold }
            }
        }
        if settled {
            if runBegan != nil, !runGlobal { commit(runMoves) }
            runBegan = nil
            // Busy cells that go on moving while the slide stands still stay busy. Other small motion
            // is not learned here: the first and last samples of a fade move only a few cells.
            if local { commit(moving.indices.map { moving[$0] && busyUntil[$0] >= time ? 1 : 0 }) }
            return
        }
        if runBegan == nil {
            runBegan = time
            runGlobal = false
            runMoves = [Double](repeating: 0, count: moving.count)
        }
        if !local { runGlobal = true }
        // A cell counts once a stretch: a wipe's edge crosses a cell in two samples.
        for i in moving.indices where moving[i] { runMoves[i] = 1 }
        if !runGlobal, time - runBegan! > 2 {
            commit(runMoves)
            runMoves = [Double](repeating: 0, count: moving.count)
        }
    }

    /// Cells that are busy at the last sample, row by row (`cols` x `rows`).
    public var busyCells: [Bool] {
        let now = lastTime ?? 0
        return busyUntil.map { $0 >= now }
    }

    /// Feeds the analysis picture at `time` (`width` x `height` bytes); returns what it means for the chapters.
    public mutating func add(_ picture: [UInt8], at time: Double) -> Decision? {
        precondition(picture.count == Self.width * Self.height)
        defer { previous = picture; lastTime = time }
        guard let prev = previous else { return nil }
        let moving = Self.differingCells(picture, prev, pixelThreshold: pixelThreshold, cellPixels: cellPixels)

        let decay = lastTime.map { exp2(-(time - $0) / moveHalfLife) } ?? 1
        for i in moves.indices { moves[i] *= decay }
        let busy = Self.dilate(busyUntil.map { $0 >= time })
        if let p = pending {
            if time > p.until {
                pending = p.replaced.flatMap { $0.until >= time ? Pending(start: $0.start, cells: $0.cells, until: $0.until) : nil }
            } else if p.cells.filter({ busy[$0] }).count * 2 >= p.cells.count {
                if let r = p.replaced {
                    starts[starts.count - 1] = r.start
                    pending = Pending(start: r.start, cells: r.cells, until: r.until)
                    return .retakeStill
                }
                pending = nil
                starts.removeLast()
                return .retract
            }
        }
        let quiet = busy.lazy.filter { !$0 }.count
        let movingQuiet = moving.indices.lazy.filter { moving[$0] && !busy[$0] }.count
        let settled = movingQuiet <= max(4, quiet / 100)
        let slideLike = isSlideLike(picture)
        // Only motion over a slide is learned: a full-screen camera's would mask the slide that follows.
        learn(moving, settled: settled, at: time, overSlide: slideLike)

        if !settled {
            if !unsettled { changeStart = nil }
            unsettled = true
            settledSince = nil
            judged = false
            if !slideLike { changeStart = nil } else if changeStart == nil { changeStart = time }
            return nil
        }
        if unsettled && changeStart == nil && slideLike { changeStart = time }
        unsettled = false
        if settledSince == nil { settledSince = time }
        guard !judged, time - settledSince! >= settleSeconds - 1e-6 else { return nil }
        judged = true

        guard slideLike else { return nil }
        guard let ref = reference else {
            reference = picture
            return .firstSlide
        }
        let differing = Self.differingCells(picture, ref, pixelThreshold: pixelThreshold, cellPixels: cellPixels)
            .enumerated().map { $0.element && !busy[$0.offset] }
        guard Self.significantCells(differing) >= minChangedCells else {
            // The same slide: follow slow drifts and a parked pointer.
            reference = picture
            return nil
        }
        defer { reference = picture }
        if Self.onlyAdded(differing, reference: ref, flatRange: flatRange) { return .retakeStill }
        if Self.isScrolled(picture, from: ref, pixelThreshold: pixelThreshold) { return nil }
        let start = changeStart ?? time
        let cells = differing.indices.filter { differing[$0] }
        if start - starts.last! < minimumChapter {
            // Too soon after the last change: one chapter. If that change is still unconfirmed, this one
            // takes its place (should the first turn out to be an inset's cut, this one still counts).
            if let p = pending, starts.count > 1 {
                starts[starts.count - 1] = start
                pending = Pending(start: start, cells: cells, until: time + confirmSeconds, replaced: (p.start, p.cells, p.until))
            }
            return .retakeStill
        }
        starts.append(start)
        pending = Pending(start: start, cells: cells, until: time + confirmSeconds)
        return .newChapter(start: start)
    }

    /// A picture is slide-like when enough of its cells are flat (a slide's background, a letterbox),
    /// which camera footage never is.
    func isSlideLike(_ p: [UInt8]) -> Bool {
        var flat = 0, veryFlat = 0, edged = 0
        for r in 0..<Self.rows {
            for c in 0..<Self.cols {
                let range = Self.cellRange(p, c, r)
                if range <= flatRange { flat += 1 }
                if range <= 3 { veryFlat += 1 }
                if Self.cellEdges(p, c, r) >= 3 { edged += 1 }
            }
        }
        let cells = Double(Self.cols * Self.rows)
        // A sparse slide (a title and a line or two) has few edges but is almost all flat background.
        return Double(flat) >= flatShare * cells && Double(edged) >= edgeShare * cells
            || Double(veryFlat) >= sparseFlatShare * cells && edged >= 4
    }

    static func cellEdges(_ p: [UInt8], _ c: Int, _ r: Int) -> Int {
        var n = 0
        for y in (r * cell)..<(r * cell + cell) {
            let row = y * width
            for x in max(1, c * cell)..<(c * cell + cell) where abs(Int(p[row + x]) - Int(p[row + x - 1])) > 40 { n += 1 }
        }
        return n
    }

    static func cellRange(_ p: [UInt8], _ c: Int, _ r: Int) -> Int {
        var lo = 255, hi = 0
        for y in (r * cell)..<(r * cell + cell) {
            let row = y * width
            for x in (c * cell)..<(c * cell + cell) {
                let v = Int(p[row + x])
                lo = min(lo, v); hi = max(hi, v)
            }
        }
        return hi - lo
    }

    /// Cells of `a` that differ from `b`.
    static func differingCells(_ a: [UInt8], _ b: [UInt8], pixelThreshold: Int, cellPixels: Int) -> [Bool] {
        var counts = [Int](repeating: 0, count: cols * rows)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                for y in 0..<height {
                    let row = y * width, cellRow = (y / cell) * cols
                    for x in 0..<width where abs(Int(pa[row + x]) - Int(pb[row + x])) > pixelThreshold {
                        counts[cellRow + x / cell] += 1
                    }
                }
            }
        }
        return counts.map { $0 >= cellPixels }
    }

    /// Busy cells grown by one cell, to cover the edges of what moves.
    static func dilate(_ cells: [Bool]) -> [Bool] {
        var out = cells
        for r in 0..<rows {
            for c in 0..<cols where cells[r * cols + c] {
                for dr in -1...1 {
                    for dc in -1...1 {
                        let rr = r + dr, cc = c + dc
                        if rr >= 0, rr < rows, cc >= 0, cc < cols { out[rr * cols + cc] = true }
                    }
                }
            }
        }
        return out
    }

    /// The differing cells in connected groups larger than a pointer (a 2x2-cell box).
    static func significantCells(_ cells: [Bool]) -> Int {
        var seen = [Bool](repeating: false, count: cells.count)
        var total = 0
        for start in cells.indices where cells[start] && !seen[start] {
            var stack = [start], members = 0
            var minR = rows, maxR = -1, minC = cols, maxC = -1
            seen[start] = true
            while let i = stack.popLast() {
                members += 1
                let r = i / cols, c = i % cols
                minR = min(minR, r); maxR = max(maxR, r); minC = min(minC, c); maxC = max(maxC, c)
                for (dr, dc) in [(-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)] {
                    let rr = r + dr, cc = c + dc
                    guard rr >= 0, rr < rows, cc >= 0, cc < cols else { continue }
                    let j = rr * cols + cc
                    if cells[j] && !seen[j] { seen[j] = true; stack.append(j) }
                }
            }
            if maxR - minR >= 2 || maxC - minC >= 2 { total += members }
        }
        return total
    }

    /// Whether every differing cell was blank (flat) on the reference: something was added, nothing replaced.
    static func onlyAdded(_ differing: [Bool], reference: [UInt8], flatRange: Int) -> Bool {
        for i in differing.indices where differing[i] {
            if cellRange(reference, i % cols, i / cols) > flatRange { return false }
        }
        return true
    }

    /// Whether `p` is `ref` moved up or down by a whole number of rows (scrolling): for some shift, the
    /// rows that changed match almost everywhere, and far better than without the shift (two slides on
    /// one template match fairly well at any small shift). Rows that did not change (a tab bar, a
    /// status line) are left out of the comparison.
    static func isScrolled(_ p: [UInt8], from ref: [UInt8], pixelThreshold: Int) -> Bool {
        var changedRow = [Bool](repeating: false, count: height)
        var unshifted = 0
        for y in 0..<height {
            var d = 0
            for x in 0..<width where abs(Int(p[y * width + x]) - Int(ref[y * width + x])) > pixelThreshold { d += 1 }
            changedRow[y] = d * 50 > width
            unshifted += d
        }
        let maxShift = height * 3 / 4
        for shift in -maxShift...maxShift where abs(shift) >= 2 && height - abs(shift) >= height / 4 {
            var d = 0, ink = 0, area = 0
            for y in max(0, shift)..<min(height, height + shift) where changedRow[y] {
                let rp = y * width, rr = (y - shift) * width
                area += width
                for x in 0..<width {
                    if abs(Int(p[rp + x]) - Int(ref[rr + x])) > pixelThreshold { d += 1 }
                    if x > 0, abs(Int(p[rp + x]) - Int(p[rp + x - 1])) > pixelThreshold { ink += 1 }
                }
            }
            // The shifted rows must carry text (edges) and match: a plain background matches any shift.
            if area >= width * 10, ink > 200, d * 20 < area, d * 4 < unshifted { return true }
        }
        return false
    }
}

