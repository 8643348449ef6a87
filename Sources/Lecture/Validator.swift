public import Foundation
public import LectureModel
import FFmpeg

/// The outcome of checking a package.
public struct ValidationReport: Sendable, Codable {
    public struct Check: Sendable, Codable {
        public var name: String
        public var passed: Bool
        public var detail: String
    }

    public var package: String
    public var checks: [Check] = []
    public var failures: [Check] { checks.filter { !$0.passed } }

    mutating func expect(_ name: String, _ ok: Bool, _ detail: @autoclosure () -> String = "") {
        checks.append(Check(name: name, passed: ok, detail: ok ? "" : detail()))
    }
}

/// Checks an HLS package on its own: playlists, durations, keyframes, declared vs measured bit rates,
/// alignment, the ladder's weak-link variants, I-frame playlists, and that every segment decodes.
///
/// The package is hostile input: files are read through `PackageFiles` (inside the root, no symbolic
/// links, size caps), numbers are range-checked as they are parsed, a playlist may list a segment
/// once, and `shouldStop` (a signal, for the CLI) ends the work between files.
public enum Validator {
    public static func validate(package: URL, decode: Bool = true, shouldStop: @escaping () -> Bool = { false }) -> ValidationReport {
        var r = ValidationReport(package: package.path)
        let files = PackageFiles(root: package)
        let master: MasterPlaylist
        do {
            master = try MasterPlaylist(text: try files.text("master.m3u8"))
        } catch {
            r.expect("master.m3u8 parses", false, "\(error)")
            return r
        }
        r.expect("master.m3u8 parses", true)
        r.expect("master.m3u8 has variants", !master.variants.isEmpty, "no EXT-X-STREAM-INF")
        r.expect("master.m3u8 declares EXT-X-INDEPENDENT-SEGMENTS", master.independentSegments, "tag missing")

        var cache: [String: Rendition?] = [:]
        func rendition(_ uri: String) -> Rendition? {
            if let c = cache[uri] { return c }
            let c = shouldStop() ? nil : loadRendition(uri, files: files, report: &r, decode: decode, shouldStop: shouldStop)
            cache[uri] = c
            return c
        }

        var audioGroups: [String: [String]] = [:]
        for m in master.media where m["TYPE"] == "AUDIO" {
            if let g = m["GROUP-ID"], let uri = m["URI"] { audioGroups[g, default: []].append(uri) }
        }
        var videoVariants: [(MasterPlaylist.Variant, Rendition)] = []
        var lowVariant = false
        var audioOnlyVariant = false
        for v in master.variants {
            let name = v.uri
            let a = v.attributes
            let codecs = a["CODECS"] ?? ""
            let isVideo = a["RESOLUTION"] != nil || codecs.contains("avc1")
            r.expect("\(name): BANDWIDTH", bitRate(a["BANDWIDTH"]) != nil, "missing, or not a whole number of bits per second")
            r.expect("\(name): AVERAGE-BANDWIDTH", bitRate(a["AVERAGE-BANDWIDTH"]) != nil, "missing, or not a whole number of bits per second")
            r.expect("\(name): CODECS", !codecs.isEmpty, "missing")
            if isVideo {
                r.expect("\(name): RESOLUTION", a["RESOLUTION"] != nil, "missing")
                r.expect("\(name): FRAME-RATE", a["FRAME-RATE"] != nil, "missing")
            }
            guard let media = rendition(v.uri) else { continue }
            var peak = media.rate.peak, average = media.rate.average
            // Every codec of the variant (its own stream and its audio group's) is named in CODECS, and
            // CODECS names nothing else: a player that lacks one of them skips the variant.
            let listed = codecs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            var carried = media.sampleEntries
            if let g = a["AUDIO"] { carried += (audioGroups[g] ?? []).flatMap { rendition($0)?.sampleEntries ?? [] } }
            let unknown = listed.filter { Validator.sampleEntry(forCodec: $0) == nil }
            r.expect("\(name): CODECS are known codecs", unknown.isEmpty, "unknown: \(unknown.joined(separator: ", "))")
            let named = Set(listed.compactMap { Validator.sampleEntry(forCodec: $0) })
            r.expect("\(name): CODECS match the streams", named == Set(carried),
                     "CODECS \"\(codecs)\", streams carry \(Set(carried).sorted().joined(separator: ", "))")
            if let g = a["AUDIO"] {
                let uris = audioGroups[g] ?? []
                r.expect("\(name): audio group \(g) exists", !uris.isEmpty, "no EXT-X-MEDIA with GROUP-ID \(g)")
                let rates = uris.compactMap { rendition($0)?.rate }
                peak += rates.map(\.peak).max() ?? 0
                average += rates.map(\.average).max() ?? 0
            }
            if let declared = bitRate(a["BANDWIDTH"]).map(Double.init) {
                r.expect("\(name): BANDWIDTH within 10% of measured peak", abs(declared - peak) <= 0.1 * peak,
                         "declared \(whole(declared)), measured peak \(whole(peak))")
                if isVideo && declared <= 192_000 { lowVariant = true }
            }
            if let declared = bitRate(a["AVERAGE-BANDWIDTH"]).map(Double.init) {
                r.expect("\(name): AVERAGE-BANDWIDTH within 10% of measured average", abs(declared - average) <= 0.1 * average,
                         "declared \(whole(declared)), measured average \(whole(average))")
            }
            if isVideo {
                videoVariants.append((v, media))
                r.expect("\(name): every segment starts with a keyframe", media.nonKeySegments.isEmpty,
                         "segments not starting with a keyframe: \(media.nonKeySegments.prefix(5).joined(separator: ", "))")
            } else {
                audioOnlyVariant = true
            }
        }
        if videoVariants.count > 1 {
            let ref = videoVariants[0].1.playlist.segments.map(\.duration)
            for (v, m) in videoVariants.dropFirst() {
                let d = m.playlist.segments.map(\.duration)
                let aligned = d.count == ref.count && zip(d, ref).allSatisfy { abs($0 - $1) <= 0.05 }
                r.expect("\(v.uri): segments aligned with \(videoVariants[0].0.uri)", aligned,
                         "\(d.count) segments vs \(ref.count), or durations differ by more than 0.05 s")
                // A player that switches variant asks for the segment that starts where the last one
                // ended: every rung's segments must start decoding at the same time (tfdt), to the
                // millisecond, not only add up to similar durations.
                if let refStarts = videoVariants[0].1.videoStarts, let starts = m.videoStarts, starts.count == refStarts.count {
                    let off = zip(starts, refStarts).enumerated().first { abs($0.element.0 - $0.element.1) > 0.001 }
                    r.expect("\(v.uri): segments start at the same time (tfdt) as \(videoVariants[0].0.uri)", off == nil,
                             off.map { String(format: "segment %d starts at %.4f s, %.4f s there", $0.offset, $0.element.0, $0.element.1) } ?? "")
                } else {
                    r.expect("\(v.uri): segments start at the same time (tfdt) as \(videoVariants[0].0.uri)", false,
                             "a segment has no tfdt for its video track, or the segment counts differ")
                }
            }
        }
        if !videoVariants.isEmpty {
            r.expect("ladder has a video variant of at most 192 kb/s", lowVariant, "every video variant declares more")
            r.expect("one I-frame playlist per video variant", master.iFrameVariants.count >= videoVariants.count,
                     "\(master.iFrameVariants.count) I-frame playlists for \(videoVariants.count) video variants")
        }
        // A source without sound has no audio to offer on its own; every other package must.
        let hasAudio = !audioGroups.isEmpty || master.variants.contains { ($0.attributes["CODECS"] ?? "").contains("mp4a") }
        if hasAudio {
            r.expect("ladder has an audio-only variant", audioOnlyVariant, "no variant without video")
        }
        checkAudioFamilies("master.m3u8", master, report: &r)
        // The link-class masters (README, "Serving a package"): each parses, lists renditions that
        // are there and declares their peaks, and plays one audio codec family.
        for name in ["lite.m3u8", "min.m3u8", "opus.m3u8"] {
            if shouldStop() { break }
            guard name != "opus.m3u8" || (try? files.size(name)) != nil else { continue }
            let other: MasterPlaylist
            do {
                other = try MasterPlaylist(text: try files.text(name))
            } catch {
                r.expect("\(name) parses", false, "\(error)")
                continue
            }
            r.expect("\(name) parses", true)
            r.expect("\(name) has variants", !other.variants.isEmpty, "no EXT-X-STREAM-INF")
            for v in other.variants {
                guard let media = rendition(v.uri), let declared = bitRate(v.attributes["BANDWIDTH"]).map(Double.init) else { continue }
                if v.attributes["AUDIO"] == nil {
                    r.expect("\(name) \(v.uri): BANDWIDTH within 10% of measured peak", abs(declared - media.rate.peak) <= 0.1 * media.rate.peak,
                             "declared \(whole(declared)), measured peak \(whole(media.rate.peak))")
                }
            }
            checkAudioFamilies(name, other, report: &r)
        }
        let subtitleGroups = Set(master.media.filter { $0["TYPE"] == "SUBTITLES" }.compactMap { $0["GROUP-ID"] })
        for v in master.variants {
            if let g = v.attributes["SUBTITLES"] {
                r.expect("\(v.uri): subtitles group \(g) exists", subtitleGroups.contains(g), "no EXT-X-MEDIA TYPE=SUBTITLES with GROUP-ID \(g)")
            }
        }
        for m in master.media where m["TYPE"] == "SUBTITLES" {
            guard let uri = m["URI"], !shouldStop() else { continue }
            checkSubtitles(uri, files: files, report: &r)
        }
        for i in master.iFrameVariants {
            guard let uri = i["URI"] else {
                r.expect("I-frame variant has a URI", false, "URI missing")
                continue
            }
            if shouldStop() { break }
            checkIFramePlaylist(uri, files: files, report: &r)
        }
        if shouldStop() { r.expect("validation ran to the end", false, "interrupted by a signal") }
        return r
    }

    /// A BANDWIDTH-style attribute: a decimal integer of bits per second (RFC 8216 4.3.4.2), within
    /// what any link carries (1 Tb/s); nil otherwise.
    static func bitRate(_ value: String?) -> Int? {
        guard let value, let n = Int(value), (0...1_000_000_000_000).contains(n) else { return nil }
        return n
    }

    /// A measured or declared figure for a message: whole units, or what it is when not finite.
    static func whole(_ x: Double) -> String {
        x.isFinite ? String(Int64(x.rounded())) : "\(x)"
    }

    struct Rendition {
        var playlist: MediaPlaylist
        var rate: MeasuredRate
        var nonKeySegments: [String]
        /// The init segment's sample entries, one a track (`avc1`, `mp4a`, `Opus`); empty when it cannot be read.
        var sampleEntries: [String]
        /// Seconds at which each segment's video track starts decoding (`tfdt` over the track's
        /// timescale); nil when the rendition has no video track or a segment has no `tfdt` for it.
        var videoStarts: [Double]?
    }

    /// The MP4 sample entry a CODECS entry (RFC 6381) names: the codecs CoursePack writes and the
    /// common alternatives; nil for one this validator does not know.
    static func sampleEntry(forCodec codec: String) -> String? {
        let family = codec.split(separator: ".").first.map(String.init) ?? codec
        switch family {
        case "avc1", "avc3": return family
        case "hvc1", "hev1": return family
        case "av01": return "av01"
        case "mp4a": return "mp4a"
        case "opus", "Opus": return "Opus"
        case "ac-3", "ec-3", "fLaC": return family
        default: return nil
        }
    }

    private static func loadRendition(_ uri: String, files: PackageFiles, report r: inout ValidationReport, decode: Bool,
                                      shouldStop: () -> Bool) -> Rendition? {
        guard (try? PackageFiles.join("", uri)) != nil else {
            r.expect("\(uri): URI stays inside the package", false, "absolute, remote or parent path")
            return nil
        }
        guard let pl = playlist(uri, files: files, check: "parses", report: &r) else { return nil }
        r.expect("\(uri): parses", true)
        r.expect("\(uri): has segments", !pl.segments.isEmpty, "no segments")
        r.expect("\(uri): is VOD", pl.playlistType == "VOD", "EXT-X-PLAYLIST-TYPE is \(pl.playlistType ?? "missing")")
        r.expect("\(uri): ends with EXT-X-ENDLIST", pl.hasEndList, "EXT-X-ENDLIST missing")
        guard let target = pl.targetDuration else {
            r.expect("\(uri): EXT-X-TARGETDURATION", false, "missing")
            return nil
        }
        let over = pl.segments.filter { Int($0.duration.rounded()) > target }
        r.expect("\(uri): segment durations within target \(target) s", over.isEmpty,
                 "over target: \(over.prefix(3).map { "\($0.uri) \($0.duration)" }.joined(separator: ", "))")
        var initData = Data()
        var initProblem = "EXT-X-MAP missing"
        if let map = pl.mapURI {
            do {
                initData = try files.read(try PackageFiles.join(uri, map), limit: PackageFiles.Limit.initSegment)
            } catch {
                initProblem = "\(error)"
            }
        }
        r.expect("\(uri): fMP4 initialisation segment (EXT-X-MAP)", !initData.isEmpty, initProblem)
        // Segments are whole files (CoursePack writes no byte-range media playlist), each listed once:
        // a playlist that repeats one, or slices one file a million ways, would have every check run
        // on the same bytes again and again.
        let ranged = pl.segments.filter { $0.byteRange != nil }.count
        r.expect("\(uri): segments are whole files", ranged == 0, "\(ranged) EXT-X-BYTERANGE segments")
        guard ranged == 0 else { return nil }
        var seen = Set<String>()
        let repeated = pl.segments.filter { !seen.insert($0.uri).inserted }.map(\.uri)
        r.expect("\(uri): every segment listed once", repeated.isEmpty, "listed again: \(repeated.prefix(3).joined(separator: ", "))")
        guard repeated.isEmpty else { return nil }
        var problems: [String] = []
        let sizes: [Int?] = pl.segments.map { s in
            if let range = s.byteRange { return range.length }
            do {
                return try files.size(try PackageFiles.join(uri, s.uri))
            } catch {
                problems.append("\(error)")
                return nil
            }
        }
        let missing = zip(pl.segments, sizes).filter { $0.1 == nil || $0.1 == 0 }.map(\.0.uri)
        r.expect("\(uri): every segment present", missing.isEmpty,
                 "missing or empty: \(missing.prefix(5).joined(separator: ", "))\(problems.first.map { " (\($0))" } ?? "")")
        guard missing.isEmpty, !pl.segments.isEmpty else { return nil }
        var nonKey: [String] = []
        var undecodable: [String] = []
        let videoTrack = (try? MP4Fragments.tracks(initSegment: initData))?.first { $0.handler == "vide" }
        var videoStarts: [Double]? = videoTrack == nil ? nil : []
        for seg in pl.segments {
            if shouldStop() { return nil }
            let data: Data
            do {
                data = try files.read(try PackageFiles.join(uri, seg.uri), limit: PackageFiles.Limit.segment)
            } catch {
                undecodable.append("\(seg.uri) (\(error))")
                continue
            }
            let frags = (try? MP4Fragments.fragments(of: data)) ?? []
            if frags.first?.firstSampleIsSync != true { nonKey.append(seg.uri) }
            if let track = videoTrack, let t = (try? MP4Fragments.decodeTimes(ofSegment: data))?[track.id] {
                videoStarts?.append(Double(t) / Double(track.timescale))
            } else {
                videoStarts = nil
            }
            if decode, let problem = SegmentDecoder.problem(initSegment: initData, segment: data) {
                undecodable.append("\(seg.uri) (\(problem))")
            }
        }
        if decode {
            r.expect("\(uri): every segment decodes", undecodable.isEmpty, undecodable.prefix(3).joined(separator: ", "))
        }
        let rate = MeasuredRate(sizes: sizes.map { $0! }, durations: pl.segments.map(\.duration), target: Double(target))
        var entries: [String] = []
        do {
            entries = try MP4Fragments.sampleEntries(initSegment: initData)
            _ = try MP4Fragments.timing(initSegment: initData)
            r.expect("\(uri): initialisation segment describes its stream", true)
        } catch {
            r.expect("\(uri): initialisation segment describes its stream", false, "\(pl.mapURI ?? "EXT-X-MAP"): \(error)")
        }
        return Rendition(playlist: pl, rate: rate, nonKeySegments: nonKey, sampleEntries: entries, videoStarts: videoStarts)
    }

    /// A player switches between variants of one audio codec family only: Chromium failed with a
    /// decode error when it switched from an Opus variant to an AAC one.
    private static func checkAudioFamilies(_ name: String, _ master: MasterPlaylist, report r: inout ValidationReport) {
        let families = Set(master.variants.compactMap { v -> String? in
            let codecs = (v.attributes["CODECS"] ?? "").lowercased()
            return codecs.contains("opus") ? "Opus" : codecs.contains("mp4a") ? "AAC" : nil
        })
        r.expect("\(name): one audio codec family", families.count <= 1, "variants carry \(families.sorted().joined(separator: " and "))")
    }

    /// The media playlist `uri` of the package; when it cannot be read or parsed, the check
    /// "URI: `check`" fails with the reason and the result is nil.
    private static func playlist(_ uri: String, files: PackageFiles, check: String, report r: inout ValidationReport) -> MediaPlaylist? {
        do {
            return try MediaPlaylist(text: try files.text(try PackageFiles.join("", uri)))
        } catch {
            r.expect("\(uri): \(check)", false, "\(error)")
            return nil
        }
    }

    private static func checkSubtitles(_ uri: String, files: PackageFiles, report r: inout ValidationReport) {
        guard let pl = playlist(uri, files: files, check: "subtitle playlist parses", report: &r) else { return }
        r.expect("\(uri): subtitle playlist is VOD with segments", pl.playlistType == "VOD" && pl.hasEndList && !pl.segments.isEmpty,
                 "EXT-X-PLAYLIST-TYPE, EXT-X-ENDLIST or segments missing")
        let bad = pl.segments.filter { s in
            let text = (try? files.text(try PackageFiles.join(uri, s.uri), limit: PackageFiles.Limit.subtitle)) ?? ""
            return !text.hasPrefix("WEBVTT")
        }.map(\.uri)
        r.expect("\(uri): every subtitle segment is WebVTT", bad.isEmpty, "missing or not WebVTT: \(bad.prefix(3).joined(separator: ", "))")
    }

    private static func checkIFramePlaylist(_ uri: String, files: PackageFiles, report r: inout ValidationReport) {
        guard let pl = playlist(uri, files: files, check: "I-frame playlist parses", report: &r) else { return }
        r.expect("\(uri): is EXT-X-I-FRAMES-ONLY with entries", pl.iFramesOnly && !pl.segments.isEmpty, "tag missing or no entries")
        var bad: [String] = []
        // Entries are byte ranges of the media segments: each file is read and parsed once.
        var last: (uri: String, data: Data, frags: [FragmentInfo])?
        for s in pl.segments {
            if last?.uri != s.uri {
                let data = (try? files.read(try PackageFiles.join(uri, s.uri), limit: PackageFiles.Limit.segment)) ?? Data()
                last = (s.uri, data, (try? MP4Fragments.fragments(of: data)) ?? [])
            }
            guard let range = s.byteRange, let (_, data, frags) = last, range.offset + range.length <= data.count else {
                bad.append(s.uri)
                continue
            }
            guard let f = frags.first(where: { $0.moofOffset == range.offset }), f.firstSampleIsSync,
                  f.firstSampleOffset + f.firstSampleSize <= range.offset + range.length else {
                bad.append(s.uri)
                continue
            }
        }
        r.expect("\(uri): every entry is a byte range holding a keyframe", bad.isEmpty, "bad entries: \(bad.prefix(5).joined(separator: ", "))")
    }
}

/// Decodes one fMP4 segment (with its initialisation segment) completely.
enum SegmentDecoder {
    /// nil when every packet decodes; otherwise the reason.
    static func problem(initSegment: Data, segment: Data) -> String? {
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("coursepack-seg-\(UUID().uuidString).mp4")
        defer { try? FileManager.default.removeItem(at: tmp) }
        do {
            try (initSegment + segment).write(to: tmp)
            var options = DemuxerOptions()
            options.allowedFormats = ["mov"]
            let demuxer = try Demuxer(path: "file:" + tmp.path, options: options)
            var decoders: [Int: Decoder] = [:]
            for s in demuxer.streams where s.kind == .video || s.kind == .audio {
                decoders[s.index] = try Decoder(demuxer: demuxer, streamIndex: s.index, threads: 1)
            }
            guard !decoders.isEmpty else { return "no audio or video stream" }
            var frames = 0
            while let p = try demuxer.read() {
                guard let d = decoders[p.streamIndex] else { continue }
                try d.send(p)
                while case .value = try d.receive() { frames += 1 }
            }
            for d in decoders.values {
                try d.send(nil)
                while case .value = try d.receive() { frames += 1 }
            }
            return frames > 0 ? nil : "no frames"
        } catch {
            return "\(error)"
        }
    }
}
