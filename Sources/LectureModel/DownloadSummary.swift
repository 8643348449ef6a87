import Foundation

/// A file for learners who download on Wi-Fi and watch offline.
public struct DownloadSummary: Sendable, Codable {
    /// "video" (MP4 with audio) or "audio" (M4A).
    public var kind: String
    public var path: String
    public var bytes: Int
    /// The renditions it was made from.
    public var video: String?
    public var audio: String

    package init(kind: String, path: String, bytes: Int, video: String? = nil, audio: String) {
        self.kind = kind
        self.path = path
        self.bytes = bytes
        self.video = video
        self.audio = audio
    }
}
