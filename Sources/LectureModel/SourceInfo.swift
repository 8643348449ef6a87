import Foundation

/// Limits that refuse a source before any decoding.
public struct Limits: Sendable, Codable {
    /// Longest side of the picture, pixels.
    public var maxLongSide = 7680
    /// Pixels in one picture; also given to the decoder as max_pixels.
    public var maxPixels = 7680 * 4320
    /// Seconds of media.
    public var maxDuration: Double = 6 * 3600
    /// Bytes read to recognise the container.
    public var probeSize = 20_000_000
    /// Microseconds of media analysed to find stream parameters.
    public var analyzeDuration = 10_000_000
    /// Wall-clock seconds after which a run is stopped; nil for none.
    public var timeout: Double?

    public init() {}
}

/// Containers CoursePack opens. Anything else is refused after libavformat recognises it by content,
/// whatever the file is called: playlists (HLS, DASH), concat scripts, image sequences and other
/// formats that open further files or URLs are not on this list.
public let allowedContainers = [
    "mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts", "mpeg", "mpegvideo",
    "flv", "asf", "ogg", "wav", "w64", "mp3", "aac", "flac", "aiff", "caf", "amr", "dv", "h264", "hevc",
    "m4v", "ivf", "nut",
]

/// What a source is: container, streams, and the facts the ladder is planned from.
public struct SourceInfo: Codable, Sendable {
    public struct Video: Codable, Sendable {
        public var index: Int
        public var codec: String
        public var profile: String?
        public var width: Int
        public var height: Int
        public var pixelFormat: String
        public var bitDepth: Int
        /// Sample (pixel) aspect ratio, "num:den".
        public var sampleAspectRatio: String
        /// Clockwise degrees a player turns the picture to show it upright.
        public var rotation: Int
        /// Size shown to a viewer, after the sample aspect ratio and rotation.
        public var displayWidth: Int
        public var displayHeight: Int
        public var frameRate: Double
        public var variableFrameRate: Bool
        /// "progressive", "tff", "bff" or "unknown" as declared by the stream.
        public var fieldOrder: String
        public var bitRate: Int?

        package init(index: Int, codec: String, profile: String? = nil, width: Int, height: Int, pixelFormat: String, bitDepth: Int, sampleAspectRatio: String, rotation: Int, displayWidth: Int, displayHeight: Int, frameRate: Double, variableFrameRate: Bool, fieldOrder: String, bitRate: Int? = nil) {
            self.index = index
            self.codec = codec
            self.profile = profile
            self.width = width
            self.height = height
            self.pixelFormat = pixelFormat
            self.bitDepth = bitDepth
            self.sampleAspectRatio = sampleAspectRatio
            self.rotation = rotation
            self.displayWidth = displayWidth
            self.displayHeight = displayHeight
            self.frameRate = frameRate
            self.variableFrameRate = variableFrameRate
            self.fieldOrder = fieldOrder
            self.bitRate = bitRate
        }
    }

    public struct Audio: Codable, Sendable {
        public var index: Int
        public var codec: String
        public var sampleRate: Int
        public var channels: Int
        public var layout: String
        public var language: String?
        public var title: String?
        public var isDefault: Bool
        public var bitRate: Int?

        package init(index: Int, codec: String, sampleRate: Int, channels: Int, layout: String, language: String? = nil, title: String? = nil, isDefault: Bool, bitRate: Int? = nil) {
            self.index = index
            self.codec = codec
            self.sampleRate = sampleRate
            self.channels = channels
            self.layout = layout
            self.language = language
            self.title = title
            self.isDefault = isDefault
            self.bitRate = bitRate
        }
    }

    public var path: String
    public var container: String
    public var containerName: String
    public var duration: Double
    public var startTime: Double
    public var sizeBytes: Int?
    public var bitRate: Int?
    public var video: Video?
    public var audio: [Audio]
    /// Index of the audio stream that is packaged.
    public var selectedAudio: Int?
    /// Things worth telling the user, e.g. which of several audio tracks is used.
    public var notes: [String]

    /// Display aspect ratio (width / height) after SAR and rotation.
    public var displayAspect: Double? {
        guard let v = video, v.displayHeight > 0 else { return nil }
        return Double(v.displayWidth) / Double(v.displayHeight)
    }

    package init(path: String, container: String, containerName: String, duration: Double, startTime: Double, sizeBytes: Int? = nil, bitRate: Int? = nil, video: Video? = nil, audio: [Audio], selectedAudio: Int? = nil, notes: [String]) {
        self.path = path
        self.container = container
        self.containerName = containerName
        self.duration = duration
        self.startTime = startTime
        self.sizeBytes = sizeBytes
        self.bitRate = bitRate
        self.video = video
        self.audio = audio
        self.selectedAudio = selectedAudio
        self.notes = notes
    }
}
