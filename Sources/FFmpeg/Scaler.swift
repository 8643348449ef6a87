internal import CFFmpeg
internal import CZimg

/// Converts pictures between sizes and pixel formats with libswscale; a Lanczos resize of an 8-bit
/// 4:2:0 picture to the same format (a rung scaled from another rung's picture, or from an 8-bit 4:2:0 source)
/// runs on zimg, the same three-lobe filter for a half to a fifth of the CPU.
/// Not Sendable: an SwsContext is confined to one thread.
public final class Scaler {
    private var context: OpaquePointer?
    private let resampler: ZimgResampler?
    public let width: Int
    public let height: Int
    public let pixelFormat: PixelFormat
    private let sourceWidth: Int
    private let sourceHeight: Int
    private let sourceFormat: PixelFormat

    /// The resampling filter.
    public enum Kernel: Sendable {
        /// Keeps small text legible after downscaling: on a 1080p screencast scaled to 720p and back it
        /// scores 82.0 VMAF against 78.7 for bicubic, for a little more CPU. For pictures people see.
        case lanczos
        /// The mean of the source pixels each output pixel covers: the cheapest filter that does not
        /// alias on a large reduction. For small grey copies that only measurements look at.
        case area

        var flags: Int32 {
            switch self {
            case .lanczos: SWS_LANCZOS
            case .area: SWS_AREA
            }
        }
    }

    public convenience init(sourceWidth: Int, sourceHeight: Int, sourceFormat: PixelFormat,
                            width: Int, height: Int, pixelFormat: PixelFormat = .yuv420p, kernel: Kernel = .lanczos) throws {
        try self.init(sourceWidth: sourceWidth, sourceHeight: sourceHeight, sourceFormat: sourceFormat,
                      width: width, height: height, pixelFormat: pixelFormat, kernel: kernel, zimg: true)
    }

    /// `zimg: false` keeps every picture on libswscale (the reference the zimg path is checked against).
    init(sourceWidth: Int, sourceHeight: Int, sourceFormat: PixelFormat,
         width: Int, height: Int, pixelFormat: PixelFormat, kernel: Kernel, zimg: Bool) throws {
        self.width = width
        self.height = height
        self.pixelFormat = pixelFormat
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.sourceFormat = sourceFormat
        self.kernel = kernel
        // zimg takes 4:2:0 pictures of even width and height only (its chroma planes are exactly half).
        let even = [sourceWidth, sourceHeight, width, height].allSatisfy { $0 % 2 == 0 }
        resampler = zimg && kernel == .lanczos && sourceFormat == pixelFormat && (pixelFormat == .yuv420p || pixelFormat == .yuvj420p)
            && even && (sourceWidth, sourceHeight) != (width, height)
            ? try ZimgResampler(sourceWidth: sourceWidth, sourceHeight: sourceHeight, width: width, height: height,
                                fullRange: pixelFormat == .yuvj420p)
            : nil
        // libswscale's context (its filters and line buffers) is made when a picture needs it: at once
        // where zimg cannot resize, else only for a picture whose planes zimg cannot take.
        if resampler == nil { _ = try swscale() }
    }

    private let kernel: Kernel

    private func swscale() throws -> OpaquePointer {
        if let context { return context }
        guard let made = sws_getContext(Int32(sourceWidth), Int32(sourceHeight), sourceFormat.av,
                                        Int32(width), Int32(height), pixelFormat.av, kernel.flags, nil, nil, nil) else {
            throw MediaError(kind: .unsupported, operation: "creating scaler",
                             message: "cannot convert \(sourceWidth)x\(sourceHeight) \(sourceFormat) to \(width)x\(height) \(pixelFormat)")
        }
        context = made
        return made
    }

    deinit { sws_freeContext(context) }

    /// Pictures scaled by zimg and by libswscale (a source picture whose planes zimg cannot take as
    /// they are aligned goes to libswscale, which gives the same filter).
    public private(set) var zimgScales = 0
    public private(set) var swscaleScales = 0

    /// A new frame at the target size, with the source frame's timestamp and square pixels.
    public func scale(_ source: Frame) throws -> Frame {
        guard source.width == sourceWidth, source.height == sourceHeight, source.pixelFormat == sourceFormat else {
            throw MediaError(kind: .other, operation: "scaling",
                             message: "picture changed to \(source.width)x\(source.height) \(source.pixelFormat) mid-stream")
        }
        let out = Frame(timeBase: source.timeBase)
        out.pointer.pointee.width = Int32(width)
        out.pointer.pointee.height = Int32(height)
        out.pointer.pointee.format = pixelFormat.raw
        // Rows aligned as zimg needs them when it may write the picture (0: libavutil's own choice).
        try check(av_frame_get_buffer(out.pointer, resampler == nil ? 0 : Int32(ZimgResampler.alignment)), "allocating scaled picture")
        if let resampler, try resampler.resample(source, into: out) {
            zimgScales += 1
        } else {
            try check(sws_scale_frame(try swscale(), out.pointer, source.pointer), "scaling")
            swscaleScales += 1
        }
        out.pointer.pointee.pts = source.pts ?? cp_nopts()
        out.pointer.pointee.pict_type = source.pointer.pointee.pict_type
        out.pointer.pointee.key_frame = source.pointer.pointee.key_frame
        out.pointer.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        return out
    }
}

extension Scaler {
    /// Scales `source` into the rectangle at (`x`, `y`) of `canvas`, a picture in this scaler's output
    /// format at least as large; `x` and `y` must be even for 4:2:0 formats.
    public func scale(_ source: Frame, into canvas: Frame, x: Int, y: Int) throws {
        guard sourceMatches(source), canvas.pixelFormat == pixelFormat, x + width <= canvas.width, y + height <= canvas.height else {
            throw MediaError(kind: .other, operation: "scaling into canvas", message: "picture or canvas does not fit")
        }
        var dst = [UnsafeMutablePointer<UInt8>?](repeating: nil, count: 4)
        var strides = [Int32](repeating: 0, count: 4)
        for i in 0..<(pixelFormat == .gray ? 1 : 3) {
            let (px, py) = i == 0 ? (x, y) : (x / 2, y / 2)
            dst[i] = canvas.plane(i).map { $0 + py * canvas.lineSize(i) + px }
            strides[i] = Int32(canvas.lineSize(i))
        }
        let rows = (0..<4).map { UnsafePointer<UInt8>(source.plane($0)) }
        let srcStride = (0..<4).map { Int32(source.lineSize($0)) }
        let context = try swscale()
        let rc = rows.withUnsafeBufferPointer { src in
            dst.withUnsafeMutableBufferPointer { d in
                sws_scale(context, src.baseAddress, srcStride, 0, Int32(sourceHeight), d.baseAddress, strides)
            }
        }
        try check(rc, "scaling into canvas")
    }

    /// Whether `frame` has the size and pixel format this scaler was made for.
    public func sourceMatches(_ frame: Frame) -> Bool {
        frame.width == sourceWidth && frame.height == sourceHeight && frame.pixelFormat == sourceFormat
    }
}

/// Lanczos resampling (three lobes, as libswscale's `SWS_LANCZOS`) of 8-bit Y'CbCr 4:2:0 pictures with
/// zimg, which keeps range and chroma siting and converts nothing else. Scaling lecture720's 720p
/// pictures to 480p: 0.3-0.7 CPU s a minute against libswscale's 1.5-1.7 s, VMAF of the picture scaled
/// back 87.95 against 88.03 (BENCHMARKS.md, 2026-12-07, "the rung scalers on zimg").
final class ZimgResampler {
    /// 512-bit vectors where libavutil aligns its pictures for them (`av_cpu_max_align`: 64 bytes on a
    /// CPU with AVX-512), so that decoded pictures meet zimg's wider alignment. On a Xeon with AVX-512,
    /// 720p -> 480p took 0.60-0.64 ms a picture against 0.88-1.22 ms with 256-bit vectors
    /// (BENCHMARKS.md, 2026-12-07 19:18-20:40, "a new machine: ... zimg's 512-bit mode").
    static let wide = av_cpu_max_align() >= 64
    /// What zimg needs of every plane's address and row stride.
    static let alignment = Int(cp_zimg_alignment(wide ? 1 : 0))
    private let graph: OpaquePointer
    private let tmp: UnsafeMutableRawPointer
    private let width: Int
    private let height: Int

    init(sourceWidth: Int, sourceHeight: Int, width: Int, height: Int, fullRange: Bool) throws {
        guard let g = cp_zimg_lanczos_420(UInt32(sourceWidth), UInt32(sourceHeight), UInt32(width), UInt32(height),
                                          fullRange ? 1 : 0, Int32(ZIMG_CHROMA_LEFT.rawValue), 3, Self.wide ? 1 : 0) else {
            throw MediaError(kind: .unsupported, operation: "creating scaler",
                             message: "zimg cannot resize \(sourceWidth)x\(sourceHeight) to \(width)x\(height): \(Self.lastError())")
        }
        var size = 0
        if zimg_filter_graph_get_tmp_size(g, &size) != ZIMG_ERROR_SUCCESS {
            zimg_filter_graph_free(g)
            throw MediaError(kind: .other, operation: "creating scaler", message: "zimg: \(Self.lastError())")
        }
        graph = g
        tmp = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 64)
        self.width = width
        self.height = height
    }

    deinit {
        zimg_filter_graph_free(graph)
        tmp.deallocate()
    }

    /// Resamples `source` into `out` (both 4:2:0, `out` allocated at the target size). False, with
    /// nothing written, when a plane of either is not aligned as zimg needs.
    func resample(_ source: Frame, into out: Frame) throws -> Bool {
        guard out.width == width, out.height == height else { return false }
        let a = Self.alignment
        var src: [UnsafePointer<UInt8>?] = []
        var dst: [UnsafeMutablePointer<UInt8>?] = []
        var srcStride: [Int] = []
        var dstStride: [Int] = []
        for i in 0..<3 {
            guard let s = source.plane(i), let d = out.plane(i) else { return false }
            let ss = source.lineSize(i), ds = out.lineSize(i)
            guard Int(bitPattern: s) % a == 0, Int(bitPattern: d) % a == 0, ss % a == 0, ds % a == 0 else { return false }
            src.append(UnsafePointer(s))
            dst.append(d)
            srcStride.append(ss)
            dstStride.append(ds)
        }
        let rc = cp_zimg_process(graph, tmp, src, srcStride, dst, dstStride)
        guard rc == ZIMG_ERROR_SUCCESS else {
            throw MediaError(kind: .other, operation: "scaling", message: "zimg: \(Self.lastError())")
        }
        return true
    }

    private static func lastError() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let code = zimg_get_last_error(&buffer, buffer.count)
        let message = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return "\(message) (\(code.rawValue))"
    }
}
