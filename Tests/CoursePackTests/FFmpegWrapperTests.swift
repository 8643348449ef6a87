@testable import FFmpeg
import Foundation
import Testing

/// The FFmpeg wrapper's results as values: what a codec hands back, and which errors blame the input.
@Suite(.blockingThreads) struct FFmpegWrapperTests {
    static let sample = Support.repoRoot.appendingPathComponent("Samples/lecture.mp4").path

    /// Two pictures are the same when every visible byte of every plane is: padding past the width
    /// does not count, the last byte of the last chroma row does.
    @Test func samePictureComparesEveryVisibleByte() throws {
        let a = try Frame.picture(width: 65, height: 33, format: .yuv420p, luma: 40)
        let b = try Frame.picture(width: 65, height: 33, format: .yuv420p, luma: 40)
        #expect(a.hasSamePicture(as: b) && a.hasSamePicture(as: a.reference()))
        #expect(!a.hasSamePicture(as: try Frame.picture(width: 64, height: 33, format: .yuv420p, luma: 40)))
        #expect(!a.hasSamePicture(as: try Frame.picture(width: 65, height: 33, format: .yuv420p, luma: 41)))
        if b.lineSize(0) > 65 {
            try #require(b.plane(0))[b.lineSize(0) - 1] = 7  // padding of the first row
            #expect(a.hasSamePicture(as: b))
        }
        // Chroma of 65x33 is 33x17: row 16, byte 32.
        try #require(b.plane(2))[16 * b.lineSize(2) + 32] = 129
        #expect(!a.hasSamePicture(as: b))
    }

    /// A Lanczos resize of a 4:2:0 picture runs on zimg, and gives libswscale's picture within
    /// rounding (PSNR of every plane above 40 dB, on real pictures of the sample); a conversion to
    /// another format stays on libswscale.
    @Test func rungResizesRunOnZimgWithLibswscalesFilter() throws {
        let demuxer = try Demuxer(path: Self.sample)
        let video = try #require(demuxer.streams.first { $0.kind == .video })
        let decoder = try Decoder(demuxer: demuxer, streamIndex: video.index, threads: 1)
        var pictures: [Frame] = []
        while pictures.count < 8, let p = try demuxer.read() {
            guard p.streamIndex == video.index else { continue }
            try decoder.send(p)
            while case .value(let f) = try decoder.receive() { pictures.append(f) }
        }
        let first = try #require(pictures.first)
        #expect(first.pixelFormat == .yuv420p)
        for (w, h) in [(854, 480), (426, 240)] {
            let zimg = try Scaler(sourceWidth: first.width, sourceHeight: first.height, sourceFormat: .yuv420p, width: w, height: h)
            let swscale = try Scaler(sourceWidth: first.width, sourceHeight: first.height, sourceFormat: .yuv420p, width: w, height: h,
                                     pixelFormat: .yuv420p, kernel: .lanczos, zimg: false)
            for picture in pictures {
                let a = try zimg.scale(picture), b = try swscale.scale(picture)
                for plane in 0..<3 {
                    let psnr = Self.psnr(a, b, plane: plane)
                    #expect(psnr > 40, "\(w)x\(h) plane \(plane): \(psnr) dB")
                }
            }
            #expect(zimg.zimgScales == pictures.count && zimg.swscaleScales == 0)
            #expect(swscale.zimgScales == 0 && swscale.swscaleScales == pictures.count)
        }
        let toJPEGRange = try Scaler(sourceWidth: first.width, sourceHeight: first.height, sourceFormat: .yuv420p,
                                     width: 640, height: 360, pixelFormat: .yuvj420p)
        _ = try toJPEGRange.scale(first)
        #expect(toJPEGRange.zimgScales == 0 && toJPEGRange.swscaleScales == 1)
        // An odd-sized source (zimg wants even sizes for 4:2:0) is scaled by libswscale, not refused.
        let odd = try Frame.picture(width: 641, height: 361, format: .yuv420p, luma: 90)
        let fromOdd = try Scaler(sourceWidth: 641, sourceHeight: 361, sourceFormat: .yuv420p, width: 426, height: 240)
        let scaled = try fromOdd.scale(odd)
        #expect(fromOdd.swscaleScales == 1 && scaled.width == 426 && scaled.height == 240)
    }

    /// A picture of noise (every byte of every plane from `random`), so that any byte a scaler gets
    /// wrong shows.
    static func noise(width: Int, height: Int, format: PixelFormat = .yuv420p, _ random: inout SplitMix) throws -> Frame {
        let f = try Frame.picture(width: width, height: height, format: format, alignment: ZimgResampler.alignment)
        for i in 0..<3 {
            let (w, h) = i == 0 ? (width, height) : ((width + 1) / 2, (height + 1) / 2)
            let p = try #require(f.plane(i))
            for y in 0..<h { for x in 0..<w { p[y * f.lineSize(i) + x] = UInt8(truncatingIfNeeded: random.next()) } }
        }
        return f
    }

    /// A copy of `frame` (its own buffers).
    static func copy(_ frame: Frame) throws -> Frame {
        let f = try Frame.picture(width: frame.width, height: frame.height, format: frame.pixelFormat, alignment: ZimgResampler.alignment)
        for i in 0..<3 {
            let h = i == 0 ? frame.height : (frame.height + 1) / 2
            let (d, s) = (try #require(f.plane(i)), try #require(frame.plane(i)))
            for y in 0..<h { (d + y * f.lineSize(i)).update(from: s + y * frame.lineSize(i), count: min(f.lineSize(i), frame.lineSize(i))) }
        }
        return f
    }

    /// Whether every visible byte of every plane of two 4:2:0 pictures is the same; where not, the
    /// smallest region of luma pixels holding every differing luma byte and every pixel a differing
    /// chroma byte covers.
    static func difference(_ a: Frame, _ b: Frame) -> PictureRegion {
        var r = PictureRegion.same
        for i in 0..<3 {
            let k = i == 0 ? 1 : 2
            let (w, h) = i == 0 ? (a.width, a.height) : ((a.width + 1) / 2, (a.height + 1) / 2)
            let (pa, pb) = (a.plane(i)!, b.plane(i)!)
            for y in 0..<h {
                for x in 0..<w where pa[y * a.lineSize(i) + x] != pb[y * b.lineSize(i) + x] {
                    r = r.union(PictureRegion(left: x * k, top: y * k, right: (x + 1) * k, bottom: (y + 1) * k))
                }
            }
        }
        return r
    }

    /// Where a picture changed is the smallest even-cornered rectangle holding every changed byte of
    /// every plane (chroma counted at the luma pixels it covers), found whichever plane and corner a
    /// change is in; a change in the padding past the width is none; other formats are not boxed.
    @Test func changeIsTheBoxOfEveryDifferingByte() throws {
        var random = SplitMix(seed: 26)
        let a = try Self.noise(width: 330, height: 186, &random)
        #expect(try Self.copy(a).change(since: a) == .same)
        for trial in 0..<60 {
            let b = try Self.copy(a)
            for _ in 0..<(1 + trial % 3) {
                let plane = Int(random.next() % 3)
                let (w, h) = plane == 0 ? (330, 186) : (165, 93)
                let (x, y) = (Int(random.next() % UInt64(w)), Int(random.next() % UInt64(h)))
                try #require(b.plane(plane))[y * b.lineSize(plane) + x] &+= 1
            }
            var want = Self.difference(a, b)
            want = PictureRegion(left: want.left & ~1, top: want.top & ~1, right: (want.right + 1) & ~1, bottom: (want.bottom + 1) & ~1)
            #expect(b.change(since: a) == want, "trial \(trial)")
        }
        let padded = try Self.copy(a)
        if padded.lineSize(0) > 330 {
            try #require(padded.plane(0))[padded.lineSize(0) - 1] &+= 1
            #expect(padded.change(since: a) == .same)
        }
        #expect(try Frame.picture(width: 330, height: 186, format: .gray).change(since: try Frame.picture(width: 330, height: 186, format: .gray)) == nil)
        #expect(try Frame.picture(width: 331, height: 186, format: .yuv420p).change(since: try Frame.picture(width: 331, height: 186, format: .yuv420p)) == nil)
    }

    /// A picture scaled again only where its source changed is byte for byte the picture scaled whole,
    /// for every rung step of the ladders, portrait and full range included; the region it reports
    /// holds every byte that differs from the picture before; a change over most of the picture is
    /// left to the whole scale.
    @Test func scalingOnlyWhatChangedGivesTheWholeScale() throws {
        var random = SplitMix(seed: 11)
        let steps: [(Int, Int, Int, Int, PixelFormat)] = [
            (1280, 720, 854, 480, .yuv420p), (854, 480, 640, 360, .yuv420p), (640, 360, 426, 240, .yuv420p),
            (426, 240, 384, 216, .yuv420p), (1920, 1080, 1280, 720, .yuv420p), (720, 1280, 480, 854, .yuv420p),
            (1280, 720, 854, 480, .yuvj420p)]
        for (sw, sh, dw, dh, format) in steps {
            let scaler = try Scaler(sourceWidth: sw, sourceHeight: sh, sourceFormat: format, width: dw, height: dh, pixelFormat: format)
            let a = try Self.noise(width: sw, height: sh, format: format, &random)
            let before = try scaler.scale(a)
            var partly = 0
            for trial in 0..<8 {
                let b = try Self.copy(a)
                // A rectangle of new bytes somewhere, corners and edges included, up to a fifth of each side.
                let (w, h) = (1 + Int(random.next() % UInt64(sw / 5)), 1 + Int(random.next() % UInt64(sh / 5)))
                let x = trial == 0 ? 0 : trial == 1 ? sw - w : Int(random.next() % UInt64(sw - w))
                let y = trial == 0 ? 0 : trial == 1 ? sh - h : Int(random.next() % UInt64(sh - h))
                for i in 0..<3 {
                    let k = i == 0 ? 1 : 2
                    let p = try #require(b.plane(i))
                    for yy in (y / k)..<((y + h + k - 1) / k) { for xx in (x / k)..<((x + w + k - 1) / k) { p[yy * b.lineSize(i) + xx] = UInt8(truncatingIfNeeded: random.next()) } }
                }
                let changed = try #require(b.change(since: a))
                let whole = try scaler.scale(b)
                guard let part = try scaler.scale(b, from: before, changed: changed) else { continue }
                partly += 1
                let wrong = Self.difference(part.picture, whole)
                #expect(wrong.isEmpty, "\(sw)x\(sh) -> \(dw)x\(dh) \(format), change \(changed): differs at \(wrong)")
                let moved = Self.difference(before, whole)
                #expect(moved.union(part.changed) == part.changed, "\(sw)x\(sh) -> \(dw)x\(dh): reported \(part.changed), changed \(moved)")
            }
            #expect(partly >= 6, "\(sw)x\(sh) -> \(dw)x\(dh): \(partly) of 8 scaled in part")
            #expect(scaler.partialScales == partly && scaler.swscaleScales == 0)
            let most = PictureRegion(left: 0, top: 0, right: sw, bottom: sh * 3 / 4)
            #expect(try scaler.scale(a, from: before, changed: most) == nil)
        }
    }

    /// Peak signal-to-noise ratio of one plane of two 4:2:0 pictures of the same size, in dB.
    static func psnr(_ a: Frame, _ b: Frame, plane: Int) -> Double {
        let (w, h) = plane == 0 ? (a.width, a.height) : ((a.width + 1) / 2, (a.height + 1) / 2)
        guard let pa = a.plane(plane), let pb = b.plane(plane) else { return 0 }
        var sum = 0.0
        for y in 0..<h {
            for x in 0..<w {
                let d = Double(pa[y * a.lineSize(plane) + x]) - Double(pb[y * b.lineSize(plane) + x])
                sum += d * d
            }
        }
        let mse = sum / Double(w * h)
        return mse == 0 ? .infinity : 10 * log10(255 * 255 / mse)
    }

    @Test func receiveTellsNeedsInputFromEndOfStream() throws {
        let demuxer = try Demuxer(path: Self.sample)
        let video = try #require(demuxer.streams.first { $0.kind == .video })
        let decoder = try Decoder(demuxer: demuxer, streamIndex: video.index, threads: 1)
        guard case .needsInput = try decoder.receive() else {
            Issue.record("a fresh decoder should ask for input")
            return
        }
        var frames = 0
        var read = 0
        while read < 30, let p = try demuxer.read() {
            guard p.streamIndex == video.index else { continue }
            read += 1
            try decoder.send(p)
            while case .value = try decoder.receive() { frames += 1 }
        }
        try decoder.send(nil)
        var last = try decoder.receive()
        while case .value = last {
            frames += 1
            last = try decoder.receive()
        }
        guard case .endOfStream = last else {
            Issue.record("a drained decoder should say end of stream, said \(last)")
            return
        }
        #expect(frames == read)
        guard case .endOfStream = try decoder.receive() else {
            Issue.record("end of stream should stay end of stream")
            return
        }
    }

    /// A rung lets go of its encoder as it ends (`Encoder.close`): the encoder refuses work after,
    /// with an error, not a crash.
    @Test func aClosedEncoderRefusesWork() throws {
        var config = VideoEncoderConfig(width: 64, height: 64, timeBase: Rational(1, 25), frameRate: Rational(25, 1), gopSize: 25)
        config.options = ["preset": "ultrafast"]
        let encoder = try Encoder(video: config)
        let picture = try Frame.picture(width: 64, height: 64, format: .yuv420p)
        picture.pts = 0
        try encoder.send(picture)
        try encoder.send(nil)
        var packets = 0
        while case .value = try encoder.receive() { packets += 1 }
        #expect(packets == 1)
        encoder.close()
        #expect(throws: MediaError.self) { try encoder.send(picture) }
        #expect(throws: MediaError.self) { try encoder.receive() }
        encoder.close()
    }

    @Test func aFullDecoderIsNotCorruptInput() throws {
        let demuxer = try Demuxer(path: Self.sample)
        let video = try #require(demuxer.streams.first { $0.kind == .video })
        let decoder = try Decoder(demuxer: demuxer, streamIndex: video.index, threads: 1)
        var thrown: MediaError?
        var sent = 0
        while thrown == nil, sent < 200, let p = try demuxer.read() {
            guard p.streamIndex == video.index else { continue }
            do {
                try decoder.send(p)  // never receiving: the decoder fills up
                sent += 1
            } catch let e as MediaError {
                thrown = e
            }
        }
        let e = try #require(thrown, "sent \(sent) packets without receiving and no error")
        #expect(!e.isDataError, "\(e) counted against the input")
    }

    @Test func errorsThatBlameTheInput() {
        #expect(MediaError(kind: .invalidData, operation: "decoding", message: "x").isDataError)
        #expect(!MediaError(kind: .io, operation: "writing", message: "x").isDataError)
        #expect(!MediaError(kind: .interrupted, operation: "reading", message: "x").isDataError)
    }
}

/// Wrappers called out of order or with indices they do not have throw; they do not crash.
@Suite(.blockingThreads) struct FFmpegMisuseTests {
    @Test func writingBeforeTheHeaderThrows() throws {
        let demuxer = try Demuxer(path: FFmpegWrapperTests.sample)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("misuse-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: out) }
        let muxer = try Muxer(path: out.path, format: "mp4")
        let packet = try #require(try demuxer.read())
        #expect(throws: MediaError.self) { try muxer.write(packet, stream: 0) }
        let copied = try muxer.addStream(copying: packet.streamIndex, of: demuxer)
        try muxer.writeHeader()
        #expect(throws: MediaError.self) { try muxer.write(packet, stream: copied + 1) }
        #expect(throws: MediaError.self) { try muxer.write(packet, stream: -1) }
        #expect(throws: MediaError.self) { try muxer.writeHeader() }
        try muxer.write(packet, stream: copied)
        try muxer.finish()
        #expect(throws: MediaError.self) { try muxer.write(packet, stream: copied) }
    }

    @Test func streamIndicesAreChecked() throws {
        let demuxer = try Demuxer(path: FFmpegWrapperTests.sample)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("misuse-\(UUID().uuidString).mp4")
        let muxer = try Muxer(path: out.path, format: "mp4")
        for index in [-1, demuxer.streams.count, 1 << 20] {
            #expect(throws: MediaError.self) { _ = try Decoder(demuxer: demuxer, streamIndex: index) }
            #expect(throws: MediaError.self) { _ = try muxer.addStream(copying: index, of: demuxer) }
        }
    }
}

extension FFmpegWrapperTests {
    /// Every picture of the first video stream of a file, with its time in seconds.
    static func pictures(_ path: String) throws -> [(time: Double, frame: Frame)] {
        let demuxer = try Demuxer(path: path)
        let video = try #require(demuxer.streams.first { $0.kind == .video })
        let decoder = try Decoder(demuxer: demuxer, streamIndex: video.index, threads: 1)
        var out: [(time: Double, frame: Frame)] = []
        func take() throws {
            while case .value(let f) = try decoder.receive() { if let t = f.time { out.append((t, f)) } }
        }
        while let p = try demuxer.read() {
            guard p.streamIndex == video.index else { continue }
            try decoder.send(p)
            try take()
        }
        try decoder.send(nil)
        try take()
        return out
    }

    /// The luma PSNR of each picture of `rendition` (a video file) against the picture of `source` at
    /// the same time (each counted from its first picture), scaled whole by libswscale's Lanczos to
    /// the rendition's size; nil for a picture without a source picture within 5 ms of its time.
    static func psnrAgainstSource(rendition: String, source: String) throws -> [Double?] {
        let rung = try pictures(rendition), src = try pictures(source)
        guard let r0 = rung.first, let s0 = src.first else { return [] }
        let scaler = try Scaler(sourceWidth: s0.frame.width, sourceHeight: s0.frame.height, sourceFormat: s0.frame.pixelFormat,
                                width: r0.frame.width, height: r0.frame.height, pixelFormat: .yuv420p, kernel: .lanczos, zimg: false)
        return try rung.map { r in
            let t = r.time - r0.time + s0.time
            guard let near = src.min(by: { abs($0.time - t) < abs($1.time - t) }), abs(near.time - t) < 0.005 else { return nil }
            return psnr(r.frame, try scaler.scale(near.frame), plane: 0)
        }
    }
}

/// A small seeded generator (SplitMix64), so that a failing picture can be made again.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
