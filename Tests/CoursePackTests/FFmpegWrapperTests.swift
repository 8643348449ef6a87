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
