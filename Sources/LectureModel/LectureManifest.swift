public import Foundation

/// `lecture.json` at the root of a package: what a player or LMS needs to know about one lecture.
/// Its JSON Schema is docs/lecture.schema.json.
public struct LectureManifest: Sendable, Codable {
    public struct Storyboard: Sendable, Codable {
        public var vtt: String
        public var sprites: [String]
        public var tileWidth: Int
        public var tileHeight: Int
        public var interval: Double
        public var tiles: Int
    }

    /// The lecture for the weakest links: the audio-only rendition with one still per chapter.
    public struct SlidesAndAudio: Sendable, Codable {
        public var description: String
        public var audio: String
        public var peakBitrate: Int
        public var chapters: String
        public var stills: [String]
        /// What a learner downloads for the whole lecture: the audio's segments and init segment and
        /// every still.
        public var bytes: Int
        public var megabytesPerHour: Double
    }

    /// How the package was made: the same tool version, preset and key make the same package.
    public struct Build: Sendable, Codable {
        public var generator: String
        public var preset: String
        /// SHA-256 of the preset's canonical JSON.
        public var presetSHA256: String
        /// A caller's key for everything that went into the package (a batch uses it to skip unchanged lectures).
        public var key: String?

        package init(generator: String, preset: String, presetSHA256: String, key: String? = nil) {
            self.generator = generator
            self.preset = preset
            self.presetSHA256 = presetSHA256
            self.key = key
        }
    }

    public var format = "coursepack-lecture/1"
    public var build: Build?
    /// The source's facts; `path` holds the file name only.
    public var source: SourceInfo
    public var duration: Double
    public var master: String
    /// Every master playlist of the package, `master.m3u8` first, then the link-class masters
    /// (`lite.m3u8`, `min.m3u8`) and any audio-only master of another codec family (`opus.m3u8`).
    public var masters: [MasterPlaylistSummary]
    /// Video renditions, largest first: each with its sound muxed in (`audio` names it), or without
    /// sound when the package uses audio groups (`Preset.muxAudio` false).
    public var renditions: [RenditionSummary]
    public var audio: [RenditionSummary]
    public var poster: ThumbnailSummary.Poster?
    public var storyboard: Storyboard?
    public var chapters: [Chapter]
    public var chaptersVTT: String?
    public var slidesAndAudio: SlidesAndAudio?
    /// Caption tracks (HLS SUBTITLES group "subs", segmented WebVTT).
    public var captions: [CaptionSummary]
    /// The transcript made from the speech (`--asr-model`): `transcript.txt` and the timed
    /// `transcript.json`; nil when there is no speech stage or no speech was found.
    public var transcript: TranscriptSummary?
    /// Files for offline viewing: a fast-start MP4 of a low rung with audio, and an M4A of the audio.
    public var downloads: [DownloadSummary]
    public var warnings: [String]

    package init(package: URL, source: SourceInfo, master: MasterSummary, thumbnails: ThumbnailSummary?, chapters: [Chapter],
         transcript: TranscriptSummary? = nil, downloads: [DownloadSummary], warnings: [String], build: Build?) {
        self.transcript = transcript
        self.build = build
        var s = source
        s.path = URL(fileURLWithPath: source.path).lastPathComponent
        self.source = s
        self.master = master.master
        masters = master.masters
        renditions = master.renditions.filter { $0.kind == "video" }
        audio = master.renditions.filter { $0.kind == "audio" }
        duration = (renditions.first ?? audio.first).map { ($0.duration * 1000).rounded() / 1000 } ?? source.duration
        poster = thumbnails?.poster
        storyboard = thumbnails.flatMap { t in
            t.storyboard.map { Storyboard(vtt: $0, sprites: t.sprites, tileWidth: t.tileWidth, tileHeight: t.tileHeight,
                                          interval: t.interval, tiles: t.tiles) }
        }
        self.chapters = chapters
        chaptersVTT = chapters.isEmpty ? nil : "chapters/chapters.vtt"
        // The lightest audio-only rendition with the light stills.
        if let a = audio.filter({ $0.audioOnly == true }).min(by: { $0.peakBitrate < $1.peakBitrate }), !chapters.isEmpty {
            let stills = chapters.map { $0.lightStill ?? $0.still }
            let fileSize = { (path: String) in
                (try? FileManager.default.attributesOfItem(atPath: package.appendingPathComponent(path).path)[.size] as? Int) ?? 0
            }
            let audioDir = (a.playlist as NSString).deletingLastPathComponent
            let initBytes = fileSize(audioDir + "/init.mp4")
            let bytes = a.bytes + initBytes + Set(stills).reduce(0) { $0 + fileSize($1) }
            let hours = max(a.duration, 1e-3) / 3600
            slidesAndAudio = SlidesAndAudio(
                description: "Slides and audio: play the audio-only rendition and show each chapter's still from its start time. "
                    + "A complete lecture for learners whose link cannot carry video.",
                audio: a.playlist, peakBitrate: a.peakBitrate, chapters: "chapters/chapters.vtt", stills: stills,
                bytes: bytes, megabytesPerHour: (Double(bytes) / 1e6 / hours * 10).rounded() / 10)
        }
        self.downloads = downloads
        captions = master.captions
        self.warnings = warnings
    }

    /// Reads a package's lecture.json.
    public static func read(package: URL) throws -> LectureManifest {
        try JSONDecoder().decode(LectureManifest.self, from: Data(contentsOf: package.appendingPathComponent("lecture.json")))
    }

    /// The same manifest with every path prefixed by `prefix` (a package folder relative to a course manifest).
    public func rebased(under prefix: String) -> LectureManifest {
        func p(_ path: String) -> String { prefix + path }
        var m = self
        m.master = p(master)
        m.masters = masters.map { var x = $0; x.playlist = p(x.playlist); return x }
        m.renditions = renditions.map { var r = $0; r.playlist = p(r.playlist); r.iFramePlaylist = r.iFramePlaylist.map(p); return r }
        m.audio = audio.map { var r = $0; r.playlist = p(r.playlist); r.iFramePlaylist = r.iFramePlaylist.map(p); return r }
        m.poster = poster.map { var x = $0; x.full = p(x.full); x.small = p(x.small); return x }
        m.storyboard = storyboard.map { var x = $0; x.vtt = p(x.vtt); x.sprites = x.sprites.map(p); return x }
        m.chapters = chapters.map { var c = $0; c.still = p(c.still); c.lightStill = c.lightStill.map(p); return c }
        m.chaptersVTT = chaptersVTT.map(p)
        m.slidesAndAudio = slidesAndAudio.map { var x = $0; x.audio = p(x.audio); x.chapters = p(x.chapters); x.stills = x.stills.map(p); return x }
        m.captions = captions.map { var c = $0; c.playlist = p(c.playlist); return c }
        m.downloads = downloads.map { var d = $0; d.path = p(d.path); return d }
        m.transcript = transcript.map { var t = $0; t.text = p(t.text); t.json = p(t.json); return t }
        return m
    }

    package func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try OutputFile.write(encoder.encode(self), to: directory.appendingPathComponent("lecture.json"))
    }
}
