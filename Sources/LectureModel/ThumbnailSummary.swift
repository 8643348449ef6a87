import Foundation

/// Where the poster and storyboard went, for the run's summary.
public struct ThumbnailSummary: Sendable, Codable {
    public struct Poster: Sendable, Codable {
        public var full: String
        public var small: String
        /// Seconds into the lecture the poster shows.
        public var time: Double

        package init(full: String, small: String, time: Double) {
            self.full = full
            self.small = small
            self.time = time
        }
    }

    public var poster: Poster?
    /// WebVTT mapping time ranges to `sprite-NNN.jpg#xywh=x,y,w,h`.
    public var storyboard: String?
    public var sprites: [String]
    public var tileWidth: Int
    public var tileHeight: Int
    /// Seconds between storyboard tiles.
    public var interval: Double
    public var tiles: Int

    package init(poster: Poster? = nil, storyboard: String? = nil, sprites: [String], tileWidth: Int, tileHeight: Int, interval: Double, tiles: Int) {
        self.poster = poster
        self.storyboard = storyboard
        self.sprites = sprites
        self.tileWidth = tileWidth
        self.tileHeight = tileHeight
        self.interval = interval
        self.tiles = tiles
    }
}
