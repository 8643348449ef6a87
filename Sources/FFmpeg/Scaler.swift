internal import CFFmpeg
internal import CFFmpegShims
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

    deinit {
        sws_freeContext(context)
        cp_picture_pool_free(pool)
    }

    /// Output pictures come from a pool of buffers, laid out as `av_frame_get_buffer` lays out the first
    /// (rows aligned as zimg needs them when it may write the picture; else libavutil's own choice):
    /// a rung makes a picture for every source picture, and reusing their buffers keeps the allocator
    /// from spreading them over its arenas.
    private var pool: OpaquePointer?

    private func allocate(_ out: Frame) throws {
        if pool == nil {
            let layout = Frame()
            layout.pointer.pointee.width = Int32(width)
            layout.pointer.pointee.height = Int32(height)
            layout.pointer.pointee.format = pixelFormat.raw
            try check(av_frame_get_buffer(layout.pointer, resampler == nil ? 0 : Int32(ZimgResampler.alignment)), "allocating scaled picture")
            guard let made = cp_picture_pool_new(layout.pointer) else {
                throw MediaError(kind: .other, operation: "scaling", message: "cannot make a pool of \(width)x\(height) pictures")
            }
            pool = made
        }
        try check(cp_picture_pool_get(pool, out.pointer), "allocating scaled picture")
    }

    /// Pictures scaled by zimg and by libswscale (a source picture whose planes zimg cannot take as
    /// they are aligned goes to libswscale, which gives the same filter).
    public private(set) var zimgScales = 0
    public private(set) var swscaleScales = 0
    /// Of `zimgScales`, the pictures scaled only where they changed (`scale(_:from:changed:)`).
    public private(set) var partialScales = 0

    /// A new frame at the target size, with the source frame's timestamp and square pixels.
    public func scale(_ source: Frame) throws -> Frame {
        guard source.width == sourceWidth, source.height == sourceHeight, source.pixelFormat == sourceFormat else {
            throw MediaError(kind: .other, operation: "scaling",
                             message: "picture changed to \(source.width)x\(source.height) \(source.pixelFormat) mid-stream")
        }
        let out = try picture(for: source)
        if let resampler, try resampler.resample(source, into: out) {
            zimgScales += 1
        } else {
            try check(sws_scale_frame(try swscale(), out.pointer, source.pointer), "scaling")
            swscaleScales += 1
        }
        return out
    }

    /// A picture at the target size with a buffer from the pool, carrying `source`'s timestamp, time
    /// base and picture type, with square pixels.
    private func picture(for source: Frame) throws -> Frame {
        let out = Frame(timeBase: source.timeBase)
        out.pointer.pointee.width = Int32(width)
        out.pointer.pointee.height = Int32(height)
        out.pointer.pointee.format = pixelFormat.raw
        try allocate(out)
        out.pointer.pointee.pts = source.pts ?? cp_nopts()
        out.pointer.pointee.pict_type = source.pointer.pointee.pict_type
        out.pointer.pointee.key_frame = source.pointer.pointee.key_frame
        out.pointer.pointee.sample_aspect_ratio = AVRational(num: 1, den: 1)
        return out
    }
}

extension Scaler {
    /// Scales `source` by scaling again only what changed since `previous`'s source: `changed` holds every
    /// luma pixel where `source` differs from the picture `previous` (this scaler's output) was scaled
    /// from. The result is a copy of `previous` with the tiles of the picture that `changed` reaches
    /// scaled anew, byte for byte what `scale(source)` gives, and the region of it that can differ from
    /// `previous` (what the filter reaches from `changed`; the rest of each tile comes out the same). Nil when
    /// that is not cheaper than scaling all of it (the tiles cover two thirds of the picture or more), or when
    /// zimg cannot take the planes: the caller scales all of it. On a slide lecture whose speaker inset
    /// moves, 720p -> 480p took 0.15-0.2 ms a picture against 0.6 ms for the whole picture
    /// (BENCHMARKS.md, 2026-12-07, "scaling only what changed").
    public func scale(_ source: Frame, from previous: Frame, changed: PictureRegion) throws -> (picture: Frame, changed: PictureRegion)? {
        guard let resampler, sourceMatches(source), previous.width == width, previous.height == height,
              previous.pixelFormat == pixelFormat else { return nil }
        let (reach, tiles) = resampler.reach(of: changed)
        guard tiles.area * 3 < width * height * 2 else { return nil }
        let out = try picture(for: source)
        // What the tiles do not cover comes from `previous`; the tiles are written whole below.
        try check(cp_frame_copy_outside(out.pointer, previous.pointer, Int32(tiles.left), Int32(tiles.top), Int32(tiles.right), Int32(tiles.bottom)),
                  "copying scaled picture")
        guard try resampler.resample(source, into: out, tiles: tiles) else { return nil }
        zimgScales += 1
        partialScales += 1
        return (out, reach)
    }

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
    private var tmp: UnsafeMutableRawPointer
    private var tmpSize: Int
    private let sourceWidth: Int
    private let sourceHeight: Int
    private let width: Int
    private let height: Int
    private let fullRange: Bool
    /// Tile graphs (`cp_zimg_lanczos_420_tile`), row by row, each made the first time it is needed.
    private var tiles: [OpaquePointer?]
    private let columns: Int
    /// Tiles of 256 x 64 output pixels: a multiple of 128 wide, so that every tile's chroma starts on a
    /// 64-byte boundary as zimg needs. Smaller tiles fit a change more closely, but each reads its
    /// filter's margin again and each graph holds 20-40 KB: scaling every tile of a 720p -> 480p picture
    /// took 1.37x the whole picture's time with these, 1.43x with 256 x 32 and 1.8x with 128 x 32, and
    /// 256 x 32 tiles raised lecture720's peak by 10-14 MB against 4 with these.
    static let tileWidth = 256
    static let tileHeight = 64

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
        tmpSize = max(size, 1)
        tmp = UnsafeMutableRawPointer.allocate(byteCount: tmpSize, alignment: 64)
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.width = width
        self.height = height
        self.fullRange = fullRange
        columns = (width + Self.tileWidth - 1) / Self.tileWidth
        tiles = Array(repeating: nil, count: columns * ((height + Self.tileHeight - 1) / Self.tileHeight))
    }

    deinit {
        zimg_filter_graph_free(graph)
        for t in tiles { if let t { zimg_filter_graph_free(t) } }
        tmp.deallocate()
    }

    /// The output pixels that read a pixel of `changed` (a region of the source, luma pixels): the
    /// union of what the luma and the chroma filters reach, each three lobes of the filter at the scale
    /// factor (`max(1, factor)` source pixels a lobe) and one pixel more; and that region widened to
    /// whole tiles.
    func reach(of changed: PictureRegion) -> (reach: PictureRegion, tiles: PictureRegion) {
        if changed.isEmpty { return (.same, .same) }
        func axis(_ lo: Int, _ hi: Int, source: Int, output: Int, tile: Int) -> (Int, Int, Int, Int) {
            let s = Double(source) / Double(output)
            let r = 3 * max(1, s) + 1
            // Output pixel j is centred on source position (j + 0.5) s - 0.5 and reads what lies within r.
            func first(_ lo: Double, _ s: Double) -> Int { Int(((lo - r + 0.5) / s - 0.5).rounded(.down)) - 1 }
            func end(_ hi: Double, _ s: Double) -> Int { Int(((hi + r + 0.5) / s - 0.5).rounded(.up)) + 2 }
            // Luma, then chroma in its own half-size pixels (its siting moves it less than one of them,
            // inside the extra pixel), back in luma pixels.
            let a = min(first(Double(lo), s), 2 * first(Double(lo / 2) - 1, s))
            let b = max(end(Double(hi), s), 2 * end(Double((hi + 1) / 2) + 1, s))
            let from = min(output, max(0, a)), to = max(from, min(output, b))
            return (from, to, from / tile * tile, min(output, (to + tile - 1) / tile * tile))
        }
        let x = axis(changed.left, changed.right, source: sourceWidth, output: width, tile: Self.tileWidth)
        let y = axis(changed.top, changed.bottom, source: sourceHeight, output: height, tile: Self.tileHeight)
        return (PictureRegion(left: x.0, top: y.0, right: x.1, bottom: y.1),
                PictureRegion(left: x.2, top: y.2, right: x.3, bottom: y.3))
    }

    /// Scales the tiles of `region` (whole tiles, from `reach(of:)`) of `source` into `out`. False, with
    /// nothing written, when a plane is not aligned as zimg needs.
    func resample(_ source: Frame, into out: Frame, tiles region: PictureRegion) throws -> Bool {
        guard let (src, srcStride, dst, dstStride) = planes(source, out) else { return false }
        let tw = Self.tileWidth, th = Self.tileHeight
        for ty in stride(from: region.top, to: region.bottom, by: th) {
            for tx in stride(from: region.left, to: region.right, by: tw) {
                let w = min(tw, width - tx), h = min(th, height - ty)
                let graph = try tile(index: ty / th * columns + tx / tw, x: tx, y: ty, width: w, height: h)
                let d: [UnsafeMutablePointer<UInt8>?] = (0..<3).map { i in dst[i]! + (i == 0 ? ty * dstStride[i] + tx : ty / 2 * dstStride[i] + tx / 2) }
                let rc = cp_zimg_process(graph, tmp, src, srcStride, d, dstStride)
                guard rc == ZIMG_ERROR_SUCCESS else {
                    throw MediaError(kind: .other, operation: "scaling", message: "zimg: \(Self.lastError())")
                }
            }
        }
        return true
    }

    private func tile(index: Int, x: Int, y: Int, width w: Int, height h: Int) throws -> OpaquePointer {
        if let t = tiles[index] { return t }
        guard let g = cp_zimg_lanczos_420_tile(UInt32(sourceWidth), UInt32(sourceHeight), UInt32(width), UInt32(height), 1,
                                               UInt32(x), UInt32(y), UInt32(w), UInt32(h), fullRange ? 1 : 0,
                                               Int32(ZIMG_CHROMA_LEFT.rawValue), 3, Self.wide ? 1 : 0) else {
            throw MediaError(kind: .other, operation: "scaling", message: "zimg cannot make a tile graph: \(Self.lastError())")
        }
        var size = 0
        guard zimg_filter_graph_get_tmp_size(g, &size) == ZIMG_ERROR_SUCCESS else {
            zimg_filter_graph_free(g)
            throw MediaError(kind: .other, operation: "scaling", message: "zimg: \(Self.lastError())")
        }
        if size > tmpSize {
            tmp.deallocate()
            tmpSize = size
            tmp = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
        }
        tiles[index] = g
        return g
    }

    /// The three planes of `source` and `out` with their strides; nil when one is missing or not aligned
    /// as zimg needs.
    private func planes(_ source: Frame, _ out: Frame) -> ([UnsafePointer<UInt8>?], [Int], [UnsafeMutablePointer<UInt8>?], [Int])? {
        let a = Self.alignment
        var src: [UnsafePointer<UInt8>?] = []
        var dst: [UnsafeMutablePointer<UInt8>?] = []
        var srcStride: [Int] = []
        var dstStride: [Int] = []
        for i in 0..<3 {
            guard let s = source.plane(i), let d = out.plane(i) else { return nil }
            let ss = source.lineSize(i), ds = out.lineSize(i)
            guard Int(bitPattern: s) % a == 0, Int(bitPattern: d) % a == 0, ss % a == 0, ds % a == 0 else { return nil }
            src.append(UnsafePointer(s))
            dst.append(d)
            srcStride.append(ss)
            dstStride.append(ds)
        }
        return (src, srcStride, dst, dstStride)
    }

    /// Resamples `source` into `out` (both 4:2:0, `out` allocated at the target size). False, with
    /// nothing written, when a plane of either is not aligned as zimg needs.
    func resample(_ source: Frame, into out: Frame) throws -> Bool {
        guard out.width == width, out.height == height, let (src, srcStride, dst, dstStride) = planes(source, out) else { return false }
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
