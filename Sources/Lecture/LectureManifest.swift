import Foundation

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
    }

    public var format = "coursepack-lecture/1"
    /// The source's facts; `path` holds the file name only.
    public var source: SourceInfo
    public var duration: Double
    public var master: String
    /// Video renditions, largest first, each without its audio.
    public var renditions: [RenditionSummary]
    public var audio: [RenditionSummary]
    public var poster: ThumbnailSummary.Poster?
    public var storyboard: Storyboard?
    public var chapters: [Chapter]
    public var chaptersVTT: String?
    public var slidesAndAudio: SlidesAndAudio?
    /// Caption tracks (HLS SUBTITLES group "subs", segmented WebVTT).
    public var captions: [CaptionSummary]
    /// Files for offline viewing: a fast-start MP4 of a low rung with audio, and an M4A of the audio.
    public var downloads: [DownloadSummary]
    public var warnings: [String]

    init(source: SourceInfo, master: MasterSummary, thumbnails: ThumbnailSummary?, chapters: [Chapter],
         downloads: [DownloadSummary], warnings: [String]) {
        var s = source
        s.path = URL(fileURLWithPath: source.path).lastPathComponent
        self.source = s
        self.master = master.master
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
        if let a = audio.first(where: { $0.audioOnly == true }), !chapters.isEmpty {
            slidesAndAudio = SlidesAndAudio(
                description: "Slides and audio: play the audio-only rendition and show each chapter's still from its start time. "
                    + "A complete lecture for learners whose link cannot carry video.",
                audio: a.playlist, peakBitrate: a.peakBitrate, chapters: "chapters/chapters.vtt", stills: chapters.map(\.still))
        }
        self.downloads = downloads
        captions = master.captions
        self.warnings = warnings
    }

    func write(to directory: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(self).write(to: directory.appendingPathComponent("lecture.json"))
    }
}
