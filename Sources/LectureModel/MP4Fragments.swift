public import Foundation

/// Reads the fragment structure of a CMAF/fMP4 media segment: where each movie fragment starts,
/// where its first sample lies, and whether that sample is a sync sample (keyframe).
public struct FragmentInfo: Sendable {
    /// Track of the fragment's first `traf`, which the other fields describe.
    public var trackID: UInt32
    /// Offset of the `moof` box in the file.
    public var moofOffset: Int
    /// Offset of the first sample's data in the file.
    public var firstSampleOffset: Int
    public var firstSampleSize: Int
    public var firstSampleIsSync: Bool
    public var sampleCount: Int
    /// Sum of the fragment's sample durations, in track timescale units.
    public var duration: UInt64
}

public enum MP4Fragments {
    public struct ParseError: Error, CustomStringConvertible {
        public let description: String
    }

    /// Movie fragments of a segment file, in order. `defaultDuration` is the init segment's default
    /// sample duration (`timing`), used where a fragment gives none of its own.
    public static func fragments(of data: Data, defaultDuration: UInt32 = 0) throws -> [FragmentInfo] {
        let bytes = [UInt8](data)
        var result: [FragmentInfo] = []
        for box in try boxes(bytes, from: 0, to: bytes.count) where box.type == "moof" {
            result.append(try fragment(bytes, moof: box, defaultDuration: defaultDuration))
        }
        return result
    }

    /// The track's timescale (mdhd) and default sample duration (trex) from an fMP4 init segment.
    public static func timing(initSegment data: Data) throws -> (timescale: UInt32, defaultDuration: UInt32) {
        let b = [UInt8](data)
        func child(_ type: String, in box: Box) throws -> Box {
            guard let c = try boxes(b, from: box.payload, to: box.end).first(where: { $0.type == type }) else {
                throw ParseError(description: "no \(type) in \(box.type) at \(box.start)")
            }
            return c
        }
        guard let moov = try boxes(b, from: 0, to: b.count).first(where: { $0.type == "moov" }) else {
            throw ParseError(description: "init segment has no moov")
        }
        let mdhd = try child("mdhd", in: try child("mdia", in: try child("trak", in: moov)))
        // Full box header, then creation and modification times, timescale, duration (32 or 64 bits
        // each by version), language and pre_defined: 24 bytes (version 0) or 36 (version 1).
        guard mdhd.payload < mdhd.end else { throw ParseError(description: "mdhd at \(mdhd.start) is empty") }
        let version = b[mdhd.payload]
        guard mdhd.end - mdhd.payload >= (version == 1 ? 36 : 24) else {
            throw ParseError(description: "mdhd at \(mdhd.start) is truncated (\(mdhd.end - mdhd.start) bytes)")
        }
        let timescale = be32(b, mdhd.payload + (version == 1 ? 20 : 12))
        guard timescale > 0 else { throw ParseError(description: "mdhd timescale is 0") }
        var defaultDuration: UInt32 = 0
        if let mvex = try boxes(b, from: moov.payload, to: moov.end).first(where: { $0.type == "mvex" }),
           let trex = try boxes(b, from: mvex.payload, to: mvex.end).first(where: { $0.type == "trex" }) {
            defaultDuration = be32(b, trex.payload + 12)  // after version/flags, track_ID, sample description index
        }
        return (timescale, defaultDuration)
    }

    /// The four-character code of the first track's sample entry (`avc1`, `mp4a`, `Opus`, ...) in an
    /// fMP4 init segment: the codec the segments carry, to check against a playlist's CODECS.
    public static func sampleEntry(initSegment data: Data) throws -> String {
        try sampleEntries(initSegment: data)[0]
    }

    /// The sample entry of every track of an fMP4 init segment, in track order (a video rendition
    /// with its sound muxed in has two).
    public static func sampleEntries(initSegment data: Data) throws -> [String] {
        let b = [UInt8](data)
        guard let moov = try boxes(b, from: 0, to: b.count).first(where: { $0.type == "moov" }) else {
            throw ParseError(description: "init segment has no moov")
        }
        var entries: [String] = []
        for trak in try boxes(b, from: moov.payload, to: moov.end) where trak.type == "trak" {
            var box: Box? = trak
            for type in ["mdia", "minf", "stbl", "stsd"] {
                guard let parent = box else { break }
                box = try boxes(b, from: parent.payload, to: parent.end).first(where: { $0.type == type })
            }
            // stsd: version/flags and an entry count precede the sample entries.
            guard let stsd = box, stsd.payload + 8 <= stsd.end,
                  let entry = try boxes(b, from: stsd.payload + 8, to: stsd.end).first else {
                throw ParseError(description: "track at \(trak.start) has no sample description (trak/mdia/minf/stbl/stsd)")
            }
            entries.append(entry.type)
        }
        guard !entries.isEmpty else { throw ParseError(description: "init segment has no track (moov/trak)") }
        return entries
    }

    /// Every track of an fMP4 init segment: its ID (tkhd), handler (`vide`, `soun`) and timescale (mdhd).
    public static func tracks(initSegment data: Data) throws -> [(id: UInt32, handler: String, timescale: UInt32)] {
        let b = [UInt8](data)
        guard let moov = try boxes(b, from: 0, to: b.count).first(where: { $0.type == "moov" }) else {
            throw ParseError(description: "init segment has no moov")
        }
        var out: [(id: UInt32, handler: String, timescale: UInt32)] = []
        for trak in try boxes(b, from: moov.payload, to: moov.end) where trak.type == "trak" {
            let children = try boxes(b, from: trak.payload, to: trak.end)
            guard let tkhd = children.first(where: { $0.type == "tkhd" }), tkhd.payload < tkhd.end,
                  let mdia = children.first(where: { $0.type == "mdia" }) else {
                throw ParseError(description: "track at \(trak.start) lacks tkhd or mdia")
            }
            let inner = try boxes(b, from: mdia.payload, to: mdia.end)
            guard let mdhd = inner.first(where: { $0.type == "mdhd" }), mdhd.payload < mdhd.end,
                  let hdlr = inner.first(where: { $0.type == "hdlr" }), hdlr.payload + 12 <= hdlr.end else {
                throw ParseError(description: "track at \(trak.start) lacks mdhd or hdlr")
            }
            // tkhd: version/flags, two times (32 or 64 bits by version), then track_ID.
            let tkhdVersion = b[tkhd.payload], mdhdVersion = b[mdhd.payload]
            guard tkhd.end - tkhd.payload >= (tkhdVersion == 1 ? 24 : 16), mdhd.end - mdhd.payload >= (mdhdVersion == 1 ? 36 : 24) else {
                throw ParseError(description: "track at \(trak.start) has a truncated tkhd or mdhd")
            }
            let id = be32(b, tkhd.payload + (tkhdVersion == 1 ? 20 : 12))
            let timescale = be32(b, mdhd.payload + (mdhdVersion == 1 ? 20 : 12))
            guard timescale > 0 else { throw ParseError(description: "track \(id) has timescale 0") }
            // hdlr: version/flags, pre_defined, then the handler type.
            let handler = String(decoding: b[(hdlr.payload + 8)..<(hdlr.payload + 12)], as: UTF8.self)
            out.append((id, handler, timescale))
        }
        return out
    }

    /// Each track's decode time at the start of a media segment: the `tfdt` of its first `traf`, in
    /// its timescale, by track ID.
    public static func decodeTimes(ofSegment data: Data) throws -> [UInt32: UInt64] {
        let b = [UInt8](data)
        var out: [UInt32: UInt64] = [:]
        for moof in try boxes(b, from: 0, to: b.count) where moof.type == "moof" {
            for traf in try boxes(b, from: moof.payload, to: moof.end) where traf.type == "traf" {
                let children = try boxes(b, from: traf.payload, to: traf.end)
                guard let tfhd = children.first(where: { $0.type == "tfhd" }), tfhd.payload + 8 <= tfhd.end else { continue }
                let id = be32(b, tfhd.payload + 4)
                guard out[id] == nil, let tfdt = children.first(where: { $0.type == "tfdt" }), tfdt.payload + 8 <= tfdt.end else { continue }
                let version = b[tfdt.payload]
                guard version == 0 || tfdt.payload + 12 <= tfdt.end else {
                    throw ParseError(description: "tfdt at \(tfdt.start) is truncated")
                }
                out[id] = version == 1 ? be64(b, tfdt.payload + 4) : UInt64(be32(b, tfdt.payload + 4))
            }
        }
        return out
    }

    /// Sum of the sample durations of every fragment of a media segment, in track timescale units.
    public static func duration(ofSegment data: Data, defaultDuration: UInt32) throws -> UInt64 {
        // A segment may hold several fragments, and a fragment in which the first track has no
        // sample starts with another track's traf: only the first track's fragments count.
        let frags = try fragments(of: data, defaultDuration: defaultDuration)
        return frags.filter { $0.trackID == frags.first?.trackID }.reduce(0) { $0 + $1.duration }
    }

    /// Bytes put in a muxed segment's `mdat` between the first track's samples and the next track's:
    /// read as a NAL unit's 4-byte length, they say 4 GiB, so a reader that walks the whole `mdat` as
    /// the video track's NAL units stops there; the fifth byte is no SEI's NAL type. No `trun` points
    /// at them, and ISO/IEC 14496-12 lets a media data box hold bytes that no sample uses.
    ///
    /// Why: video.js 7.5.5 (VHS 1.9.3), like every player whose mux.js predates the fix of mux.js
    /// issue 223 (pull request 321, 2020), looks for caption SEI messages by walking the first
    /// `traf`'s `mdat` from its start to its end as length-prefixed NAL units.
    /// In a segment with the sound muxed in, that walk runs past the last picture into the AAC
    /// frames; when the fifth byte of the first one reads as an SEI (one segment in 32, by chance)
    /// it throws, and playback stops for good at that segment's start (BENCHMARKS.md, 2026-12-07,
    /// "video.js and the muxed sound").
    public static let trackDataFence: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0x00]

    /// A media segment with `trackDataFence` between the data of the track that opens its `mdat` and
    /// the next track's, every later `trun` data offset and the `mdat` size moved to match; nil when
    /// the segment is not one `moof` and one `mdat` holding two or more tracks' runs back to back,
    /// with data offsets from the `moof` (what FFmpeg's HLS muxer writes).
    public static func fencingTrackData(_ data: Data) throws -> Data? {
        var b = [UInt8](data)
        let top = try boxes(b, from: 0, to: b.count)
        guard top.filter({ $0.type == "moof" }).count == 1, top.filter({ $0.type == "mdat" }).count == 1,
              let m = top.firstIndex(where: { $0.type == "moof" }), m + 1 < top.count, top[m + 1].type == "mdat" else { return nil }
        let moof = top[m], mdat = top[m + 1]
        guard mdat.payload - mdat.start == 8 else { return nil }
        struct Run { var track: UInt32; var offsetField: Int; var start: Int; var length: Int }
        var runs: [Run] = []
        for traf in try boxes(b, from: moof.payload, to: moof.end) where traf.type == "traf" {
            let children = try boxes(b, from: traf.payload, to: traf.end)
            guard let tfhd = children.first(where: { $0.type == "tfhd" }), tfhd.payload + 8 <= tfhd.end else { return nil }
            let hf = Int(be32(b, tfhd.payload)) & 0xFFFFFF
            guard hf & 0x1 == 0 else { return nil }  // an explicit base offset: not what the muxer writes
            var p = tfhd.payload + 8
            if hf & 0x2 != 0 { p += 4 }
            if hf & 0x8 != 0 { p += 4 }
            let defaultSize = hf & 0x10 != 0 ? Int(be32(b, p)) : 0
            for trun in children where trun.type == "trun" {
                let rf = Int(be32(b, trun.payload)) & 0xFFFFFF
                guard rf & 0x1 != 0 else { return nil }
                let count = Int(be32(b, trun.payload + 4))
                var q = trun.payload + 12
                if rf & 0x4 != 0 { q += 4 }
                let fields = [0x100, 0x200, 0x400, 0x800].filter { rf & $0 != 0 }.count
                guard count >= 0, q + count * fields * 4 <= trun.end else { throw ParseError(description: "trun at \(trun.start) is truncated") }
                var length = count * defaultSize
                if rf & 0x200 != 0 {
                    let at = rf & 0x100 != 0 ? 4 : 0
                    length = (0..<count).reduce(0) { $0 + Int(be32(b, q + $1 * fields * 4 + at)) }
                }
                let offset = Int(Int32(bitPattern: be32(b, trun.payload + 8)))
                runs.append(Run(track: be32(b, tfhd.payload + 4), offsetField: trun.payload + 8, start: moof.start + offset, length: length))
            }
        }
        guard let opening = runs.first(where: { $0.start == mdat.payload && $0.length > 0 }) else { return nil }
        let own = runs.filter { $0.track == opening.track }
        let cut = own.map { $0.start + $0.length }.max()!
        let others = runs.filter { $0.track != opening.track && $0.length > 0 }
        // The opening track's runs fill the mdat's start; every other run follows them, the first at once.
        guard own.reduce(0, { $0 + $1.length }) == cut - mdat.payload, cut <= mdat.end, !others.isEmpty,
              others.allSatisfy({ $0.start >= cut }), others.contains(where: { $0.start == cut }),
              let newSize = UInt32(exactly: mdat.end - mdat.start + trackDataFence.count),
              runs.allSatisfy({ $0.start < cut || Int32(exactly: $0.start - moof.start + trackDataFence.count) != nil }) else { return nil }
        func put32(_ v: UInt32, at i: Int) {
            b[i] = UInt8(v >> 24); b[i + 1] = UInt8(v >> 16 & 0xFF); b[i + 2] = UInt8(v >> 8 & 0xFF); b[i + 3] = UInt8(v & 0xFF)
        }
        for r in runs where r.start >= cut && r.track != opening.track {
            put32(UInt32(bitPattern: Int32(r.start - moof.start + trackDataFence.count)), at: r.offsetField)
        }
        put32(newSize, at: mdat.start)
        b.insert(contentsOf: trackDataFence, at: cut)
        return Data(b)
    }

    struct Box {
        var type: String
        var start: Int
        var payload: Int
        var end: Int
    }

    static func boxes(_ b: [UInt8], from: Int, to: Int) throws -> [Box] {
        var out: [Box] = []
        var i = from
        while i + 8 <= to {
            var size = Int(be32(b, i))
            let type = String(decoding: b[(i + 4)..<(i + 8)], as: UTF8.self)
            var header = 8
            if size == 1 {
                guard i + 16 <= to else { throw ParseError(description: "truncated 64-bit box header") }
                // A 64-bit size beyond Int.max is no file's: clamp it, and the bound below refuses it.
                size = Int(clamping: be64(b, i + 8))
                header = 16
            } else if size == 0 {
                size = to - i
            }
            guard size >= header, size <= to - i else {
                throw ParseError(description: "box \(type) at \(i) runs past the end (\(size) bytes)")
            }
            out.append(Box(type: type, start: i, payload: i + header, end: i + size))
            i += size
        }
        return out
    }

    private static func fragment(_ b: [UInt8], moof: Box, defaultDuration: UInt32) throws -> FragmentInfo {
        guard let traf = try boxes(b, from: moof.payload, to: moof.end).first(where: { $0.type == "traf" }) else {
            throw ParseError(description: "moof at \(moof.start) has no traf")
        }
        let children = try boxes(b, from: traf.payload, to: traf.end)
        guard let tfhd = children.first(where: { $0.type == "tfhd" }), let trun = children.first(where: { $0.type == "trun" }) else {
            throw ParseError(description: "traf at \(traf.start) lacks tfhd or trun")
        }
        // tfhd: version/flags, track_ID, then optional fields in flag order.
        let hf = Int(be32(b, tfhd.payload)) & 0xFFFFFF
        let trackID = be32(b, tfhd.payload + 4)
        var p = tfhd.payload + 8
        var base = moof.start  // default-base-is-moof, and the rule for the first traf without a base
        if hf & 0x1 != 0 {
            let offset = be64(b, p)
            guard offset <= UInt64(b.count) else { throw ParseError(description: "tfhd at \(tfhd.start) has a base offset past the file") }
            base = Int(offset)
            p += 8
        }
        if hf & 0x2 != 0 { p += 4 }
        var sampleDuration = defaultDuration
        if hf & 0x8 != 0 { sampleDuration = be32(b, p); p += 4 }
        var defaultSize = 0, defaultFlags: UInt32 = 0
        if hf & 0x10 != 0 { defaultSize = Int(be32(b, p)); p += 4 }
        if hf & 0x20 != 0 { defaultFlags = be32(b, p); p += 4 }
        // trun: version/flags, sample_count, optional data_offset and first_sample_flags, then samples.
        let rf = Int(be32(b, trun.payload)) & 0xFFFFFF
        let count = Int(be32(b, trun.payload + 4))
        var q = trun.payload + 8
        var dataOffset = 0
        if rf & 0x1 != 0 { dataOffset = Int(Int32(bitPattern: be32(b, q))); q += 4 }
        var firstFlags: UInt32?
        if rf & 0x4 != 0 { firstFlags = be32(b, q); q += 4 }
        let fields = [0x100, 0x200, 0x400, 0x800].filter { rf & $0 != 0 }.count
        guard q + count * fields * 4 <= trun.end else { throw ParseError(description: "trun at \(trun.start) is truncated") }
        var duration = UInt64(count) * UInt64(sampleDuration)
        if rf & 0x100 != 0 {
            duration = (0..<count).reduce(0) { $0 + UInt64(be32(b, q + $1 * fields * 4)) }
        }
        var size = defaultSize
        var flags = defaultFlags
        if count > 0 {
            if rf & 0x100 != 0 { q += 4 }
            if rf & 0x200 != 0 { size = Int(be32(b, q)); q += 4 }
            if rf & 0x400 != 0 { flags = be32(b, q); q += 4 }
        }
        if let firstFlags { flags = firstFlags }
        let isSync = flags & 0x0001_0000 == 0  // sample_is_non_sync_sample clear
        return FragmentInfo(trackID: trackID, moofOffset: moof.start, firstSampleOffset: base + dataOffset, firstSampleSize: size,
                            firstSampleIsSync: isSync, sampleCount: count, duration: duration)
    }

    private static func be32(_ b: [UInt8], _ i: Int) -> UInt32 {
        guard i + 4 <= b.count else { return 0 }
        return UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }

    private static func be64(_ b: [UInt8], _ i: Int) -> UInt64 {
        UInt64(be32(b, i)) << 32 | UInt64(be32(b, i + 4))
    }
}
