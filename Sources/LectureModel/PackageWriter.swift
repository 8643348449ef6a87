package import Foundation

/// One variant as written to the master playlist, with its measured figures.
public struct VariantSummary: Sendable, Codable {
    public var name: String
    public var kind: String  // "video" or "audio"
    public var playlist: String
    public var codecs: String
    public var width: Int?
    public var height: Int?
    public var frameRate: Double?
    /// Declared BANDWIDTH: measured peak of this rendition plus its audio, bits per second.
    public var bandwidth: Int
    /// Declared AVERAGE-BANDWIDTH, bits per second.
    public var averageBandwidth: Int
    public var segments: Int
    public var duration: Double
    public var bytes: Int
    public var iFramePlaylist: String?
    /// Audio rendition paired with it: muxed into its segments, or its AUDIO group.
    public var audio: String?
    /// The variant's segments carry its audio (no AUDIO group).
    public var audioMuxed: Bool?
}

/// One rendition folder as measured from its segments: a video rendition (with its sound when that
/// is muxed in, `audio`) or an audio rendition with a playlist of its own.
public struct RenditionSummary: Sendable, Codable {
    public var name: String
    public var kind: String  // "video" or "audio"
    public var playlist: String
    public var codecs: String
    public var width: Int?
    public var height: Int?
    public var frameRate: Double?
    public var channels: Int?
    public var sampleRate: Int?
    /// RFC 8216 6.2.2 peak segment bit rate, bits per second.
    public var peakBitrate: Int
    public var averageBitrate: Int
    /// Megabytes a learner downloads per hour of lecture at this rendition.
    public var megabytesPerHour: Double
    public var segments: Int
    public var duration: Double
    public var bytes: Int
    public var iFramePlaylist: String?
    public var audioOnly: Bool?
    /// The audio rendition muxed into this video rendition's segments, if any.
    public var audio: String?

    init(name: String, kind: String, codecs: String, measured m: PackageWriter.Measured) {
        self.name = name
        self.kind = kind
        self.playlist = "\(name)/index.m3u8"
        self.codecs = codecs
        peakBitrate = Int(m.rate.peak.rounded(.up))
        averageBitrate = Int(m.rate.average.rounded(.up))
        megabytesPerHour = (m.rate.average * 3600 / 8 / 1e6 * 10).rounded() / 10
        segments = m.playlist.segments.count
        duration = (m.playlist.totalDuration * 1000).rounded() / 1000
        bytes = m.sizes.reduce(0, +)
    }
}

/// A caption track in the master playlist's SUBTITLES group.
public struct CaptionSummary: Sendable, Codable {
    public var language: String?
    public var name: String
    public var playlist: String
    /// File name of the caption file it was made from ("speech" for captions made from the speech).
    public var source: String
    public var cues: Int
    /// True for captions made from the speech.
    public var automatic: Bool?
}

/// One master playlist of the package and what it is for: `master.m3u8` for every link, the
/// link-class masters a platform hands a learner it knows is on a slow link (`lite.m3u8`,
/// `min.m3u8`), and one master for each further audio codec family (`opus.m3u8`).
public struct MasterPlaylistSummary: Sendable, Codable {
    /// "full", "lite", "min", or the codec family ("opus").
    public var name: String
    public var playlist: String
    /// The variants it lists (rendition names), in its order.
    public var variants: [String]
    /// The largest declared BANDWIDTH among them (peak with audio), bits per second.
    public var peakBitrate: Int
    public var description: String
}

/// What the master playlists list.
public struct MasterSummary: Sendable, Codable {
    public var master: String
    public var variants: [VariantSummary]
    public var renditions: [RenditionSummary]
    public var captions: [CaptionSummary]
    public var masters: [MasterPlaylistSummary]
}

/// Writes I-frame playlists and the master playlist from what the renditions measured on disk.
package enum PackageWriter {
    package struct Measured {
        var playlist: MediaPlaylist
        var sizes: [Int]
        var rate: MeasuredRate
    }

    package static func measure(_ directory: URL) throws -> Measured {
        let url = directory.appendingPathComponent("index.m3u8")
        let pl = try MediaPlaylist(contentsOf: url)
        let sizes = pl.segmentSizes(in: directory)
        guard !pl.segments.isEmpty, sizes.allSatisfy({ $0 != nil }) else {
            throw CoursePackError(.internal, path: url.path, "rendition has no segments or a segment is missing")
        }
        let s = sizes.map { $0! }
        let rate = MeasuredRate(sizes: s, durations: pl.segments.map(\.duration), target: Double(pl.targetDuration ?? 6))
        return Measured(playlist: pl, sizes: s, rate: rate)
    }

    /// One I-frame per segment: the byte range from the segment's moof through its first (IDR) sample.
    package static func writeIFramePlaylist(_ directory: URL, _ m: Measured) throws -> MeasuredRate {
        var lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:\(m.playlist.targetDuration ?? 6)",
                     "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-I-FRAMES-ONLY"]
        if let map = m.playlist.mapURI { lines.append("#EXT-X-MAP:URI=\"\(map)\"") }
        var sizes: [Int] = [], durations: [Double] = []
        for seg in m.playlist.segments {
            let data = try Data(contentsOf: directory.appendingPathComponent(seg.uri))
            guard let frag = try MP4Fragments.fragments(of: data).first, frag.firstSampleIsSync else {
                throw CoursePackError(.internal, path: directory.appendingPathComponent(seg.uri).path, "segment does not start with a keyframe")
            }
            let length = frag.firstSampleOffset + frag.firstSampleSize - frag.moofOffset
            lines.append(String(format: "#EXTINF:%.6f,", seg.duration))
            lines.append("#EXT-X-BYTERANGE:\(length)@\(frag.moofOffset)")
            lines.append(seg.uri)
            sizes.append(length)
            durations.append(seg.duration)
        }
        lines.append("#EXT-X-ENDLIST")
        try OutputFile.write(lines.joined(separator: "\n") + "\n", to: directory.appendingPathComponent("iframes.m3u8"))
        return MeasuredRate(sizes: sizes, durations: durations, target: Double(m.playlist.targetDuration ?? 6))
    }

    package static func writeMaster(directory: URL, outcome: PassOutcome, muxAudio: Bool, captions: [CaptionWriter.Track] = []) throws -> MasterSummary {
        var audioCodecs: [String: String] = [:]
        var audioRates: [String: MeasuredRate] = [:]
        var groupLines: [String: String] = [:]
        var subtitleLines: [String] = []
        var variants: [VariantSummary] = []
        var audioOnly: [VariantSummary] = []
        var renditions: [RenditionSummary] = []
        for (a, stats) in outcome.audio {
            let codec = a.codec == "opus" ? CodecString.opus : CodecString.aac(extradata: stats.extradata) ?? "mp4a.40.2"
            audioCodecs[a.name] = codec
            // Muxed into the video renditions only: no folder, no playlist of its own.
            if muxAudio && !a.audioOnly { continue }
            let dir = directory.appendingPathComponent(a.name)
            let m = try measure(dir)
            audioRates[a.name] = m.rate
            var r = RenditionSummary(name: a.name, kind: "audio", codecs: codec, measured: m)
            r.channels = a.channels
            r.sampleRate = a.sampleRate
            r.audioOnly = a.audioOnly
            renditions.append(r)
            // An audio group only where a video variant names it: hlsdemux2 (GStreamer's playbin3) opens a
            // track for every group listed and, in an audio-only package whose variants name none, waited
            // on that track for good after switching variant.
            if !muxAudio && outcome.video.contains(where: { $0.plan.audio == a.name }) {
                groupLines[a.name] = "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"\(a.name)\",NAME=\"\(a.name)\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"\(a.channels)\",URI=\"\(a.name)/index.m3u8\""
            }
            if a.audioOnly {
                audioOnly.append(VariantSummary(
                    name: a.name, kind: "audio", playlist: "\(a.name)/index.m3u8", codecs: codec,
                    bandwidth: Int(m.rate.peak.rounded(.up)), averageBandwidth: Int(m.rate.average.rounded(.up)),
                    segments: m.playlist.segments.count, duration: m.playlist.totalDuration, bytes: m.sizes.reduce(0, +)))
            }
        }
        var iframeLines: [String: String] = [:]
        for (v, stats) in outcome.video {
            let dir = directory.appendingPathComponent(v.name)
            let m = try measure(dir)
            guard let avc = CodecString.avc(extradata: stats.extradata) else {
                throw CoursePackError(.internal, path: dir.path, "encoder gave no H.264 sequence parameter set")
            }
            let audio = v.audio.isEmpty ? nil : v.audio
            let codecs = [avc] + (audio.flatMap { audioCodecs[$0] }.map { [$0] } ?? [])
            // Muxed, the segments' sizes already hold the sound; otherwise the audio group's rendition adds to them.
            let aRate = muxAudio ? nil : audio.flatMap { audioRates[$0] }
            let iRate = try writeIFramePlaylist(dir, m)
            var r = RenditionSummary(name: v.name, kind: "video", codecs: muxAudio ? codecs.joined(separator: ",") : avc, measured: m)
            (r.width, r.height, r.frameRate, r.iFramePlaylist) = (v.width, v.height, v.frameRate, "\(v.name)/iframes.m3u8")
            if muxAudio { r.audio = audio }
            renditions.insert(r, at: renditions.filter { $0.kind == "video" }.count)
            variants.append(VariantSummary(
                name: v.name, kind: "video", playlist: "\(v.name)/index.m3u8", codecs: codecs.joined(separator: ","),
                width: v.width, height: v.height, frameRate: v.frameRate,
                bandwidth: Int((m.rate.peak + (aRate?.peak ?? 0)).rounded(.up)),
                averageBandwidth: Int((m.rate.average + (aRate?.average ?? 0)).rounded(.up)),
                segments: m.playlist.segments.count, duration: m.playlist.totalDuration, bytes: m.sizes.reduce(0, +),
                iFramePlaylist: "\(v.name)/iframes.m3u8", audio: audio, audioMuxed: muxAudio && audio != nil ? true : nil))
            iframeLines[v.name] = "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=\(Int(iRate.peak.rounded(.up))),AVERAGE-BANDWIDTH=\(Int(iRate.average.rounded(.up))),CODECS=\"\(avc)\",RESOLUTION=\(v.width)x\(v.height),URI=\"\(v.name)/iframes.m3u8\""
        }
        // Captions are cut at the segment boundaries of the first video rendition (or of the audio).
        var captionSummaries: [CaptionSummary] = []
        if !captions.isEmpty {
            let timing = try measure(directory.appendingPathComponent(outcome.video.first?.plan.name ?? outcome.audio[0].plan.name))
            for t in captions {
                let uri = try CaptionWriter.write(t, package: directory, segmentDurations: timing.playlist.segments.map(\.duration))
                let name = t.displayName
                let lang = t.input.language.map { ",LANGUAGE=\"\($0)\"" } ?? ""
                subtitleLines.append("#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"\(name)\"\(lang),DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"\(uri)\"")
                captionSummaries.append(CaptionSummary(language: t.input.language, name: name, playlist: uri,
                                                       source: t.automatic ? "speech" : URL(fileURLWithPath: t.input.path).lastPathComponent,
                                                       cues: t.cues.count, automatic: t.automatic ? true : nil))
            }
        }
        // Variants in ascending order of bandwidth, audio-only last. Players that start on the first
        // listed variant (GStreamer's adaptive demuxer, AVPlayer) then start on the one a 2G link can
        // carry and climb as their measurements allow; Chromium sorts by BANDWIDTH itself, starts on
        // the lowest and drops audio-only variants when there is video.
        let ordered = variants.sorted { $0.bandwidth < $1.bandwidth } + audioOnly.sorted { $0.bandwidth < $1.bandwidth }
        func write(_ file: String, _ listed: [VariantSummary]) throws {
            var lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
            lines += Set(listed.compactMap { $0.audioMuxed == true ? nil : $0.audio }).sorted().compactMap { groupLines[$0] }
            lines += subtitleLines
            for v in listed {
                var attrs = ["BANDWIDTH=\(v.bandwidth)", "AVERAGE-BANDWIDTH=\(v.averageBandwidth)", "CODECS=\"\(v.codecs)\""]
                if let w = v.width, let h = v.height { attrs.append("RESOLUTION=\(w)x\(h)") }
                if let f = v.frameRate { attrs.append(String(format: "FRAME-RATE=%.3f", f)) }
                if let a = v.audio, v.audioMuxed != true { attrs.append("AUDIO=\"\(a)\"") }
                if !captions.isEmpty { attrs.append("SUBTITLES=\"subs\"") }
                lines.append("#EXT-X-STREAM-INF:" + attrs.joined(separator: ","))
                lines.append(v.playlist)
            }
            lines += listed.compactMap { iframeLines[$0.name] }
            try OutputFile.write(lines.joined(separator: "\n") + "\n", to: directory.appendingPathComponent(file))
        }
        var masters: [MasterPlaylistSummary] = []
        for m in linkClassMasters(ordered) {
            try write(m.playlist, m.listed)
            masters.append(MasterPlaylistSummary(name: m.name, playlist: m.playlist, variants: m.listed.map(\.name),
                                                 peakBitrate: m.listed.map(\.bandwidth).max() ?? 0, description: m.description))
        }
        let full = masters[0]
        return MasterSummary(master: full.playlist, variants: ordered.filter { full.variants.contains($0.name) },
                             renditions: renditions, captions: captionSummaries, masters: masters)
    }

    /// Declared peak (with audio) at or under which a variant goes into `lite.m3u8`: what a 2G/EDGE or
    /// weak 3G link carries.
    package static let liteMaxBandwidth = 128_000

    /// The codec family of a variant's sound: a player can switch between variants of one family,
    /// not between families (Chromium failed with a decode error switching from Opus to AAC).
    package static func audioFamily(_ v: VariantSummary) -> String {
        v.codecs.lowercased().contains("opus") ? "opus" : "aac"
    }

    /// The masters to write, `master.m3u8` first, each listing variants of `ordered` (already in
    /// playlist order). No master mixes audio codec families: `master.m3u8` has every video variant
    /// and the audio-only variants of the video's audio family (AAC; for a lecture without video, AAC
    /// if there is any), and every other family's audio-only variants get a master of their own
    /// (`opus.m3u8`). `lite.m3u8` has the variants of `master.m3u8` whose declared peak is at most
    /// 128 kb/s (and at least the lowest video variant); `min.m3u8` the lowest video variant and the
    /// lowest audio-only variant of its family.
    package static func linkClassMasters(_ ordered: [VariantSummary]) -> [(name: String, playlist: String, listed: [VariantSummary], description: String)] {
        let video = ordered.filter { $0.kind == "video" }
        let audioOnly = ordered.filter { $0.kind != "video" }
        let families = Array(Set(audioOnly.map(audioFamily))).sorted()
        let main = video.first.map(audioFamily) ?? (families.contains("aac") ? "aac" : families.first ?? "aac")
        let full = ordered.filter { $0.kind == "video" || audioFamily($0) == main }
        var lite = full.filter { $0.bandwidth <= liteMaxBandwidth }
        if let lowest = video.first, !lite.contains(where: { $0.kind == "video" }) {
            lite = [lowest] + lite
        }
        let mainAudio = audioOnly.filter { audioFamily($0) == main }
        let min = (video.first.map { [$0] } ?? []) + (mainAudio.first.map { [$0] } ?? [])
        var out: [(name: String, playlist: String, listed: [VariantSummary], description: String)] = [
            ("full", "master.m3u8", full, "Every rendition; players adapt between them. For any link."),
            ("lite", "lite.m3u8", lite,
             "The variants whose declared peak with audio is at most \(liteMaxBandwidth / 1000) kb/s: for a learner known to be on a 2G/EDGE or weak 3G link (Save-Data, a data-saver switch, the Network Information API's effective type)."),
            ("min", "min.m3u8", min, "The lowest video variant and the audio-only variant of its codec: for the weakest links."),
        ]
        for f in families where f != main {
            out.append((f, "\(f).m3u8", audioOnly.filter { audioFamily($0) == f },
                        "Audio only in \(f == "opus" ? "Opus" : f.uppercased()), for players that take it (better speech at a lower rate); not mixed with other codecs, which players cannot switch between."))
        }
        return out
    }
}
