internal import CFFmpeg
internal import CFFmpegShims

/// A decoded video or audio frame. Owns its AVFrame; the picture or sample buffers are reference
/// counted, so `reference()` shares them instead of copying.
/// Not Sendable: a frame is used by one thread at a time; hand it over with `Transfer`.
public final class Frame {
    let pointer: UnsafeMutablePointer<AVFrame>
    /// The time base `pts` counts in.
    public var timeBase: Rational

    init(timeBase: Rational = Rational(1, 1)) {
        guard let f = av_frame_alloc() else { fatalError("av_frame_alloc: out of memory") }
        pointer = f
        self.timeBase = timeBase
    }

    deinit {
        var f: UnsafeMutablePointer<AVFrame>? = pointer
        av_frame_free(&f)
    }

    /// A new frame sharing this frame's buffers (av_frame_ref): no pixels or samples are copied.
    public func reference() -> Frame {
        let f = Frame(timeBase: timeBase)
        if av_frame_ref(f.pointer, pointer) < 0 { fatalError("av_frame_ref: out of memory") }
        f.pictureID = pictureID
        f.changed = changed
        return f
    }

    /// Frames with the same nonzero id hold the same pixels: the pipeline gives a decoded picture
    /// identical to the one before it (a still screen) that one's id, so whoever derived a picture
    /// from it may reuse that. 0: not known. Carried by `reference()`.
    public var pictureID = 0

    /// Whether `other` holds the same picture: size, format and every visible byte of every plane.
    public func hasSamePicture(as other: Frame) -> Bool { cp_frame_same_picture(pointer, other.pointer) != 0 }

    /// Where this picture differs from the picture handed on before it in the same stream of pictures
    /// (decoded, or one rendition's): nil when that is not known, so all of it counts as changed; an
    /// empty region when it is the same. Whoever derived a picture from the earlier one need only
    /// derive again what this region reaches. Carried by `reference()`.
    public var changed: PictureRegion?

    /// Where this picture differs from `earlier`: `.same`, a region of luma pixels, or nil where the two
    /// cannot be compared that way (only 8-bit 4:2:0 pictures of even size are; `hasSamePicture` takes
    /// the others).
    public func change(since earlier: Frame) -> PictureRegion? {
        var box: [Int32] = [0, 0, 0, 0]
        switch cp_frame_changed_box(pointer, earlier.pointer, &box) {
        case 0: return .same
        case 1: return PictureRegion(left: Int(box[0]), top: Int(box[1]), right: Int(box[2]), bottom: Int(box[3]))
        default: return nil
        }
    }

    /// Takes `source`'s timestamp, time base and picture type (a keyframe mark), as a picture made
    /// from it carries them.
    public func takeTiming(of source: Frame) {
        timeBase = source.timeBase
        pointer.pointee.pts = source.pointer.pointee.pts
        pointer.pointee.pict_type = source.pointer.pointee.pict_type
        pointer.pointee.key_frame = source.pointer.pointee.key_frame
    }

    /// Presentation timestamp in `timeBase`. Decoded frames carry the decoder's best-effort timestamp here.
    public var pts: Int64? {
        get { pointer.pointee.pts == cp_nopts() ? nil : pointer.pointee.pts }
        set { pointer.pointee.pts = newValue ?? cp_nopts() }
    }
    /// Presentation time in seconds.
    public var time: Double? { pts.map { timeBase.seconds($0) } }

    public var width: Int { Int(pointer.pointee.width) }
    public var height: Int { Int(pointer.pointee.height) }
    public var pixelFormat: PixelFormat { PixelFormat(pointer.pointee.format) }
    public var sampleAspectRatio: Rational { Rational(pointer.pointee.sample_aspect_ratio) }
    public var isInterlaced: Bool { cp_frame_interlaced(pointer) != 0 }
    /// The decoder concealed errors in this frame or marked it corrupt.
    public var isDamaged: Bool { cp_frame_damaged(pointer) != 0 }
    public var sampleCount: Int { Int(pointer.pointee.nb_samples) }
    public var sampleRate: Int { Int(pointer.pointee.sample_rate) }
    public var channelCount: Int { Int(pointer.pointee.ch_layout.nb_channels) }

    /// A new picture with its own buffers, every byte of plane 0 set to `luma` and chroma neutral; rows
    /// aligned to `alignment` bytes (0: libavutil's own choice).
    public static func picture(width: Int, height: Int, format: PixelFormat, luma: UInt8 = 0, alignment: Int = 0) throws -> Frame {
        let f = Frame()
        f.pointer.pointee.width = Int32(width)
        f.pointer.pointee.height = Int32(height)
        f.pointer.pointee.format = format.raw
        try check(av_frame_get_buffer(f.pointer, Int32(alignment)), "allocating \(width)x\(height) picture")
        let planes = format == .gray ? 1 : 3
        for i in 0..<planes {
            let h = i == 0 ? height : (height + 1) / 2
            f.plane(i)?.update(repeating: i == 0 ? luma : 128, count: f.lineSize(i) * h)
        }
        return f
    }

    /// Keeps only the top `height` rows (no copy: the buffers stay, the picture gets shorter).
    public func cropBottom(toHeight height: Int) throws {
        guard height > 0, height <= self.height else {
            throw MediaError(kind: .other, operation: "cropping", message: "height \(height) outside 1...\(self.height)")
        }
        pointer.pointee.height = Int32(height)
    }

    /// Reads plane 0 (luma, or the only plane of a grey picture) of an 8-bit picture.
    public func withLuma<R>(_ body: (_ bytes: UnsafePointer<UInt8>, _ stride: Int) throws -> R) rethrows -> R? {
        guard let data = plane(0), pixelFormat.bitDepth == 8 else { return nil }
        return try body(UnsafePointer(data), lineSize(0))
    }

    /// Start of picture plane `i` (AVFrame.data is a C array Swift sees as a tuple).
    func plane(_ i: Int) -> UnsafeMutablePointer<UInt8>? {
        withUnsafePointer(to: &pointer.pointee.data) { $0.withMemoryRebound(to: UnsafeMutablePointer<UInt8>?.self, capacity: 8) { $0[i] } }
    }

    /// Bytes per row of plane `i`.
    func lineSize(_ i: Int) -> Int {
        Int(withUnsafePointer(to: &pointer.pointee.linesize) { $0.withMemoryRebound(to: Int32.self, capacity: 8) { $0[i] } })
    }

    /// Asks the encoder to make this frame a keyframe (an IDR frame with libx264's forced-idr).
    public func requestKeyframe() { cp_frame_force_key(pointer) }
    /// Whether the picture type is I: set by `requestKeyframe` (carried by references and scaled copies),
    /// or by a decoder for a keyframe of the source.
    public var isKeyframeRequested: Bool { pointer.pointee.pict_type == AV_PICTURE_TYPE_I }
    /// Lets the encoder choose the picture type.
    public func clearPictureType() { cp_frame_clear_pict_type(pointer) }
}

/// Moves a non-Sendable value from one thread to another.
// @unchecked Sendable: the sender gives up the value when it wraps it and never touches it again;
// the receiver is then its only user. This is how frames and packets cross the pipeline's queues.
public struct Transfer<Value>: @unchecked Sendable {
    public let value: Value
    public init(_ value: Value) { self.value = value }
}

/// A rectangle of a picture in luma pixels: `left` and `top` included, `right` and `bottom` not.
public struct PictureRegion: Sendable, Equatable, CustomStringConvertible {
    public var left: Int
    public var top: Int
    public var right: Int
    public var bottom: Int

    public init(left: Int, top: Int, right: Int, bottom: Int) {
        self.left = left
        self.top = top
        self.right = right
        self.bottom = bottom
    }

    /// No pixel: a picture the same as the one before it.
    public static let same = PictureRegion(left: 0, top: 0, right: 0, bottom: 0)

    public var isEmpty: Bool { right <= left || bottom <= top }
    public var area: Int { isEmpty ? 0 : (right - left) * (bottom - top) }

    /// The smallest region holding both.
    public func union(_ other: PictureRegion) -> PictureRegion {
        if isEmpty { return other }
        if other.isEmpty { return self }
        return PictureRegion(left: min(left, other.left), top: min(top, other.top),
                             right: max(right, other.right), bottom: max(bottom, other.bottom))
    }

    public var description: String { isEmpty ? "none" : "\(left),\(top)-\(right),\(bottom)" }
}
