import Foundation

/// What the decode pass hands to the package writer.
package struct PassOutcome {
    package var video: [(plan: VideoRenditionPlan, stats: BranchStats)]
    package var audio: [(plan: AudioRenditionPlan, stats: BranchStats)]
    package var thumbnails: ThumbnailSummary?
    package var chapters: [Chapter]
    package var corruptPackets: Int

    package init(video: [(plan: VideoRenditionPlan, stats: BranchStats)], audio: [(plan: AudioRenditionPlan, stats: BranchStats)],
                 thumbnails: ThumbnailSummary?, chapters: [Chapter], corruptPackets: Int) {
        self.video = video
        self.audio = audio
        self.thumbnails = thumbnails
        self.chapters = chapters
        self.corruptPackets = corruptPackets
    }
}

/// Figures a branch reports when done.
package struct BranchStats: Sendable {
    package var framesIn = 0
    package var framesEncoded = 0
    /// Pictures taken from the last scaled one because the source picture repeated it.
    package var scalesReused = 0
    /// Pictures scaled, and of them those zimg resized (the rest went through libswscale).
    package var scaled = 0
    package var scaledByZimg = 0
    /// Of `scaledByZimg`, the pictures scaled again only where they changed (`Scaler.scale(_:from:changed:)`).
    package var scaledPartly = 0
    package var bytes = 0
    package var extradata: [UInt8] = []

    package init() {}
}
