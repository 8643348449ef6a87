public import Foundation

/// An attribute list of an HLS tag (RFC 8216 section 4.2), with quoted strings kept whole.
public struct AttributeList: Sendable {
    public private(set) var pairs: [(String, String)] = []

    public init(parsing text: Substring) throws {
        var i = text.startIndex
        while i < text.endIndex {
            guard let eq = text[i...].firstIndex(of: "=") else { throw HLSParseError("attribute without '=' in \"\(text)\"") }
            let key = String(text[i..<eq]).trimmingCharacters(in: .whitespaces)
            guard !key.isEmpty, key.allSatisfy({ $0.isUppercase || $0.isNumber || $0 == "-" }) else {
                throw HLSParseError("bad attribute name \"\(key)\"")
            }
            var j = text.index(after: eq)
            let value: String
            if j < text.endIndex, text[j] == "\"" {
                let start = text.index(after: j)
                guard let close = text[start...].firstIndex(of: "\"") else { throw HLSParseError("unterminated quoted string in \"\(text)\"") }
                value = String(text[start..<close])
                j = text.index(after: close)
            } else {
                let end = text[j...].firstIndex(of: ",") ?? text.endIndex
                value = String(text[j..<end])
                j = end
            }
            pairs.append((key, value))
            if j < text.endIndex {
                guard text[j] == "," else { throw HLSParseError("expected ',' after attribute \(key)") }
                j = text.index(after: j)
            }
            i = j
        }
    }

    public subscript(_ key: String) -> String? { pairs.first { $0.0 == key }?.1 }
}

public struct HLSParseError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ d: String) { description = d }
}

/// A media playlist as far as CoursePack writes and checks them.
public struct MediaPlaylist: Sendable {
    /// More entries than any lecture needs (100 hours of 2-s segments is 180,000).
    public static let maxSegments = 200_000
    /// Largest EXTINF or EXT-X-TARGETDURATION taken, seconds (a day).
    public static let maxSeconds = 86_400.0
    /// Largest EXT-X-BYTERANGE length or offset taken (1 TB).
    public static let maxByteRange = 1 << 40

    public struct Segment: Sendable {
        public var uri: String
        public var duration: Double
        /// (length, offset) when the segment is a byte range.
        public var byteRange: (length: Int, offset: Int)?
    }

    public var version: Int?
    public var targetDuration: Int?
    public var playlistType: String?
    public var mapURI: String?
    public var iFramesOnly = false
    public var independentSegments = false
    public var hasEndList = false
    public var segments: [Segment] = []

    public var totalDuration: Double { segments.reduce(0) { $0 + $1.duration } }

    public init(contentsOf url: URL) throws {
        try self.init(text: try PlaylistText.read(url))
    }

    public init(text: String) throws {
        let lines = try PlaylistText.lines(text)
        var pendingDuration: Double?
        var pendingRange: (Int, Int)?
        var nextOffset = 0
        for line in lines.dropFirst() where !line.isEmpty {
            if line.hasPrefix("#EXTINF:") {
                let v = line.dropFirst(8).split(separator: ",", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
                guard let d = Double(v), d.isFinite, (0...Self.maxSeconds).contains(d) else {
                    throw HLSParseError("bad EXTINF \"\(line.prefix(80))\": not a duration between 0 and \(Int(Self.maxSeconds)) s")
                }
                pendingDuration = d
            } else if line.hasPrefix("#EXT-X-BYTERANGE:") {
                let parts = line.dropFirst(17).split(separator: "@", omittingEmptySubsequences: false)
                let n = parts.first.flatMap { Int($0) }
                let o = parts.count > 1 ? Int(parts[1]) : nextOffset
                guard parts.count <= 2, let n, let o, (0...Self.maxByteRange).contains(n), (0...Self.maxByteRange).contains(o) else {
                    throw HLSParseError("bad EXT-X-BYTERANGE \"\(line.prefix(80))\": length and offset must be integers up to 2^40")
                }
                pendingRange = (n, o)
                nextOffset = o + n
            } else if line.hasPrefix("#EXT-X-TARGETDURATION:") {
                guard let t = Int(line.dropFirst(22)), (0...Int(Self.maxSeconds)).contains(t) else {
                    throw HLSParseError("bad EXT-X-TARGETDURATION \"\(line.prefix(80))\"")
                }
                targetDuration = t
            } else if line.hasPrefix("#EXT-X-VERSION:") {
                version = Int(line.dropFirst(15))
            } else if line.hasPrefix("#EXT-X-PLAYLIST-TYPE:") {
                playlistType = String(line.dropFirst(21))
            } else if line.hasPrefix("#EXT-X-MAP:") {
                mapURI = try AttributeList(parsing: line.dropFirst(11))["URI"]
            } else if line == "#EXT-X-I-FRAMES-ONLY" {
                iFramesOnly = true
            } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                independentSegments = true
            } else if line == "#EXT-X-ENDLIST" {
                hasEndList = true
            } else if line.hasPrefix("#EXT-X-STREAM-INF") {
                throw HLSParseError("is a master playlist, not a media playlist")
            } else if !line.hasPrefix("#") {
                guard let d = pendingDuration else { throw HLSParseError("segment \"\(line.prefix(80))\" has no EXTINF") }
                guard segments.count < Self.maxSegments else { throw HLSParseError("more than \(Self.maxSegments) segments") }
                segments.append(Segment(uri: line, duration: d, byteRange: pendingRange.map { (length: $0.0, offset: $0.1) }))
                pendingDuration = nil
                pendingRange = nil
            }
        }
        if pendingDuration != nil { throw HLSParseError("EXTINF without a segment URI at the end") }
    }
}

/// A master playlist: variants, I-frame variants and renditions.
public struct MasterPlaylist: Sendable {
    public struct Variant: Sendable {
        public var attributes: AttributeList
        public var uri: String
    }

    public var variants: [Variant] = []
    public var iFrameVariants: [AttributeList] = []
    public var media: [AttributeList] = []
    public var independentSegments = false

    public init(contentsOf url: URL) throws {
        try self.init(text: try PlaylistText.read(url))
    }

    public init(text: String) throws {
        let lines = try PlaylistText.lines(text)
        guard lines.count <= 100_000 else { throw HLSParseError("more than 100000 lines") }
        var pending: AttributeList?
        for line in lines.dropFirst() where !line.isEmpty {
            if line.hasPrefix("#EXT-X-STREAM-INF:") {
                pending = try AttributeList(parsing: line.dropFirst(18))
            } else if line.hasPrefix("#EXT-X-I-FRAME-STREAM-INF:") {
                iFrameVariants.append(try AttributeList(parsing: line.dropFirst(26)))
            } else if line.hasPrefix("#EXT-X-MEDIA:") {
                media.append(try AttributeList(parsing: line.dropFirst(13)))
            } else if line == "#EXT-X-INDEPENDENT-SEGMENTS" {
                independentSegments = true
            } else if line.hasPrefix("#EXTINF") {
                throw HLSParseError("is a media playlist, not a master playlist")
            } else if !line.hasPrefix("#") {
                guard let a = pending else { throw HLSParseError("URI \"\(line)\" without EXT-X-STREAM-INF") }
                variants.append(Variant(attributes: a, uri: line))
                pending = nil
            }
        }
        if pending != nil { throw HLSParseError("EXT-X-STREAM-INF without a URI at the end") }
    }
}

/// Bit rates measured from segment sizes.
public struct MeasuredRate: Sendable, Codable {
    /// RFC 8216 section 6.2.2: the largest bit rate of any contiguous run of segments lasting 0.5 to 1.5
    /// times the target duration.
    public var peak: Double
    /// Total segment bits over total duration.
    public var average: Double

    public init(sizes: [Int], durations: [Double], target: Double) {
        var best = 0.0
        for i in sizes.indices {
            var d = 0.0, b = 0
            for j in i..<sizes.count {
                d += durations[j]
                b += sizes[j]
                if d > 1.5 * target { break }
                if d >= 0.5 * target, d > 0 { best = max(best, Double(b) * 8 / d) }
            }
        }
        let total = durations.reduce(0, +)
        let bytes = sizes.reduce(0, +)
        if best == 0, total > 0 { best = Double(bytes) * 8 / total }
        peak = best
        average = total > 0 ? Double(bytes) * 8 / total : 0
    }
}

extension MediaPlaylist {
    /// Byte size of each segment (its byte range, or its whole file); nil where the file is missing.
    public func segmentSizes(in directory: URL) -> [Int?] {
        segments.map { s in
            if let r = s.byteRange { return r.length }
            let attrs = try? FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(s.uri).path)
            return attrs?[.size] as? Int
        }
    }
}

/// RFC 6381 codec strings from encoder configuration records.
public enum CodecString {
    /// "avc1.PPCCLL" from H.264 extradata, Annex B (start codes) or avcC.
    public static func avc(extradata: [UInt8]) -> String? {
        let d = extradata
        if d.count >= 4, d[0] == 1 {  // avcC: version, profile, constraints, level
            return String(format: "avc1.%02X%02X%02X", d[1], d[2], d[3])
        }
        var i = 0
        while i + 3 < d.count {
            if d[i] == 0, d[i + 1] == 0, d[i + 2] == 1 {
                let nal = i + 3
                if nal + 3 < d.count, d[nal] & 0x1F == 7 {
                    return String(format: "avc1.%02X%02X%02X", d[nal + 1], d[nal + 2], d[nal + 3])
                }
                i = nal
            } else {
                i += 1
            }
        }
        return nil
    }

    /// Opus in MP4 ("Opus" sample entry): the lower-case form that HLS players and MSE's
    /// isTypeSupported take.
    public static let opus = "opus"

    /// "mp4a.40.N" with N the audio object type of an AudioSpecificConfig.
    public static func aac(extradata: [UInt8]) -> String? {
        guard let first = extradata.first else { return nil }
        let objectType = Int(first >> 3)
        return objectType > 0 && objectType < 31 ? "mp4a.40.\(objectType)" : nil
    }
}

/// The VOD media playlist of a rendition, written from its segment files. libavformat's HLS muxer
/// keeps a record of about 12 KB for every segment of a VOD playlist until the end (two 4 KB file
/// names and a 4 KB key URI each), which grows with the lecture's length; run as a one-segment
/// sliding window it frees them, and this writes the full playlist afterwards from what is on disk.
package enum VODPlaylist {
    package static func write(directory: URL, independentSegments: Bool) throws {
        let fm = FileManager.default
        let names = try fm.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasPrefix("seg_") && $0.hasSuffix(".m4s") }.sorted()
        let timing = try MP4Fragments.timing(initSegment: Data(contentsOf: directory.appendingPathComponent("init.mp4")))
        var durations: [Double] = []
        for name in names {
            let units = try MP4Fragments.duration(ofSegment: Data(contentsOf: directory.appendingPathComponent(name)),
                                                  defaultDuration: timing.defaultDuration)
            durations.append(Double(units) / Double(timing.timescale))
        }
        // RFC 8216 4.3.3.1: each EXTINF rounded to the nearest integer is at most the target duration.
        let target = max(1, Int((durations.max() ?? 1).rounded()))
        var lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:\(target)", "#EXT-X-MEDIA-SEQUENCE:0",
                     "#EXT-X-PLAYLIST-TYPE:VOD"]
        if independentSegments { lines.append("#EXT-X-INDEPENDENT-SEGMENTS") }
        lines.append("#EXT-X-MAP:URI=\"init.mp4\"")
        for (name, d) in zip(names, durations) {
            lines.append(String(format: "#EXTINF:%.6f,", d))
            lines.append(name)
        }
        lines.append("#EXT-X-ENDLIST")
        try OutputFile.write(lines.joined(separator: "\n") + "\n", to: directory.appendingPathComponent("index.m3u8"))
    }
}

/// What every playlist's reading starts with.
enum PlaylistText {
    static func read(_ url: URL) throws -> String {
        do {
            return try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw HLSParseError("cannot read \(url.lastPathComponent)")
        }
    }

    /// The playlist's lines, trimmed; it must open with #EXTM3U.
    static func lines(_ text: String) throws -> [String] {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard lines.first == "#EXTM3U" else { throw HLSParseError("first line is not #EXTM3U") }
        return lines
    }
}
