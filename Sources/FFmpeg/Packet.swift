internal import CFFmpeg

/// A compressed packet. Owns its AVPacket and frees it once.
/// Not Sendable: a packet is used by one thread at a time; hand it over with `Transfer`.
public final class Packet {
    let pointer: UnsafeMutablePointer<AVPacket>
    /// The time base the packet's timestamps count in.
    public internal(set) var timeBase: Rational

    init(timeBase: Rational = Rational(1, 1)) {
        guard let p = av_packet_alloc() else { fatalError("av_packet_alloc: out of memory") }
        pointer = p
        self.timeBase = timeBase
    }

    deinit {
        var p: UnsafeMutablePointer<AVPacket>? = pointer
        av_packet_free(&p)
    }

    public var streamIndex: Int { Int(pointer.pointee.stream_index) }
    public var pts: Int64? { pointer.pointee.pts == cp_nopts() ? nil : pointer.pointee.pts }
    public var dts: Int64? {
        get { pointer.pointee.dts == cp_nopts() ? nil : pointer.pointee.dts }
        set { pointer.pointee.dts = newValue ?? cp_nopts() }
    }
    /// Duration in the packet's time base; 0 when unknown.
    public var duration: Int64 {
        get { pointer.pointee.duration }
        set { pointer.pointee.duration = newValue }
    }
    public var size: Int { Int(pointer.pointee.size) }
    /// The packet's payload bytes.
    public var bytes: [UInt8] {
        guard let d = pointer.pointee.data, pointer.pointee.size > 0 else { return [] }
        return Array(UnsafeBufferPointer(start: d, count: Int(pointer.pointee.size)))
    }
    public var isKey: Bool { cp_packet_is_key(pointer) != 0 }
    public var isCorrupt: Bool { cp_packet_is_corrupt(pointer) != 0 }

    /// Presentation time in seconds, if the packet has one.
    public var time: Double? { pts.map { timeBase.seconds($0) } }

    /// A second packet sharing this one's payload (reference counted, no copy) with its own
    /// timestamps and time base: for writing one encoded packet to more than one output, since a
    /// muxer takes the packet it writes.
    public func reference() throws -> Packet {
        let p = Packet(timeBase: timeBase)
        try check(av_packet_ref(p.pointer, pointer), "referencing a packet")
        return p
    }
}
