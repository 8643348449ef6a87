public import Foundation

/// One video rendition as it will be encoded.
public struct VideoRenditionPlan: Codable, Sendable {
    public var name: String
    public var width: Int
    public var height: Int
    /// Nominal output frame rate (the source's, capped by the rung).
    public var frameRate: Double
    /// Frame rate cap applied by dropping frames; nil keeps every frame.
    public var frameRateCap: Double?
    public var crf: Double
    public var maxKbps: Int
    public var bufferKbps: Int
    public var audio: String
    public var x264Preset: String
    /// The rung's own x264 options (`Preset.Rung.x264Params`), after the preset-wide ones.
    public var x264Params: String? = nil
    /// x264 threads for this rendition.
    public var threads: Int
    /// The rendition whose picture this one is scaled from; nil for the decoded picture.
    public var scaledFrom: String? = nil
}

/// One audio rendition as it will be encoded.
public struct AudioRenditionPlan: Codable, Sendable {
    public var name: String
    /// "aac" or "opus".
    public var codec = "aac"
    /// FFmpeg's AAC quantiser search (`Preset.Audio.aacCoder`); nil for Opus.
    public var aacCoder: String? = nil
    public var kbps: Int
    public var channels: Int
    public var sampleRate: Int
    public var audioOnly: Bool
}

/// The renditions planned for one source from a preset.
public struct LadderPlan: Codable, Sendable {
    public var video: [VideoRenditionPlan]
    public var audio: [AudioRenditionPlan]
    public var segmentSeconds: Double
    /// Two short segments open the lecture (`Preset.leadSegmentSeconds`), when it is long enough for them.
    public var leadSegmentSeconds: Double?
    /// Each video variant carries its audio rendition's packets in its own segments (`Preset.muxAudio`).
    public var muxAudio = false
    public var keyframeSeconds: Double
    /// See `Preset.keyframeMinChange`.
    public var keyframeMinChange = 0.0
    /// The largest square-pixel size of the picture that needs no upscaling (chapter stills use it).
    public var fullWidth = 0
    public var fullHeight = 0
    /// Rendition offered as an MP4 download, if any.
    public var download: String?

    /// Plans the ladder: never upscale, keep the display aspect ratio (after SAR and rotation), even
    /// dimensions, each resolution once, and the rung frame-rate caps.
    public static func make(source: SourceInfo, preset: Preset, cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> LadderPlan {
        var video: [VideoRenditionPlan] = []
        var full = (0, 0)
        if let v = source.video {
            // The largest square-pixel picture with the display aspect ratio that needs no upscaling in
            // either direction: wide pixels lose height, tall pixels lose width.
            let rotated = v.rotation == 90 || v.rotation == 270
            let storageW = Double(rotated ? v.height : v.width), storageH = Double(rotated ? v.width : v.height)
            let aspect = Double(max(1, v.displayWidth)) / Double(max(1, v.displayHeight))
            let (fullW, fullH) = storageW / storageH >= aspect ? (storageH * aspect, storageH) : (storageW, storageW / aspect)
            let dw = max(2, Int(fullW.rounded(.down))), dh = max(2, Int(fullH.rounded(.down)))
            let shortSide = min(dw, dh) / 2 * 2
            full = (dw / 2 * 2, dh / 2 * 2)
            let landscape = dw >= dh
            var sizes: [(Preset.Rung, Int, Int)] = []
            var rungs = preset.rungs.sorted { $0.height > $1.height }
            let fitting = rungs.filter { $0.height <= shortSide }
            if fitting.isEmpty, let smallest = rungs.last {
                // A source smaller than every rung gets one rendition at its own size.
                var r = smallest
                r.height = shortSide
                rungs = [r]
            } else {
                rungs = fitting
            }
            for r in rungs {
                let s = even(Double(r.height))
                let l = min(even(Double(r.height) * Double(max(dw, dh)) / Double(min(dw, dh))), max(dw, dh) / 2 * 2)
                let (w, h) = landscape ? (l, s) : (s, l)
                if sizes.contains(where: { $0.1 == w && $0.2 == h }) { continue }
                sizes.append((r, w, h))
            }
            let totalPixels = sizes.reduce(0) { $0 + $1.1 * $1.2 }
            let segmentRatio = segmentSeconds(preset: preset, duration: source.duration) / preset.segmentSeconds
            video = sizes.map { r, w, h in
                let cap = r.maxFps.flatMap { $0 < v.frameRate - 0.01 ? $0 : nil }
                let fps = cap ?? v.frameRate
                // Threads in proportion to each rendition's share of the pixels, so that the branches
                // together keep the cores busy without oversubscribing them. With a ladder of several
                // rungs on 2 cores every rung gets one thread: the branches run in parallel, and each
                // x264 frame thread would hold its own reference frames (on the 1080p screencast:
                // 439 MB peak RSS instead of 491 MB, same CPU time).
                let share = Double(w * h) / Double(max(1, totalPixels))
                let threads = max(1, min(cores, Int((share * Double(cores)).rounded())))
                return VideoRenditionPlan(
                    name: r.name, width: w, height: h, frameRate: (fps * 1000).rounded() / 1000, frameRateCap: cap,
                    crf: r.crf, maxKbps: r.maxKbps, bufferKbps: bufferKbps(r, segmentRatio: segmentRatio), audio: r.audio,
                    x264Preset: r.x264Preset ?? preset.x264Preset, x264Params: r.x264Params, threads: threads)
            }
            chainScaling(&video)
        }
        var audio: [AudioRenditionPlan] = []
        if let sel = source.selectedAudio, let a = source.audio.first(where: { $0.index == sel }) {
            let used = Set(video.map(\.audio))
            for p in preset.audio where p.audioOnly == true || used.contains(p.name) {
                let codec = p.codec ?? "aac"
                // Opus is encoded at 48 kHz whatever the source: the rate its decoders play at.
                let rate = codec == "opus" ? 48000 : p.sampleRate ?? (a.sampleRate == 44100 ? 44100 : 48000)
                audio.append(AudioRenditionPlan(name: p.name, codec: codec, aacCoder: codec == "aac" ? p.aacCoder ?? Preset.Audio.defaultAACCoder : nil, kbps: p.kbps, channels: min(p.channels, max(1, a.channels)),
                                                sampleRate: rate, audioOnly: p.audioOnly == true))
            }
        }
        if video.isEmpty == false && audio.isEmpty {
            for i in video.indices { video[i].audio = "" }
        }
        var download: String?
        if let wanted = preset.download.flatMap({ name in preset.rungs.first { $0.name == name } }) {
            download = video.first { $0.name == wanted.name }?.name
                ?? video.filter { min($0.width, $0.height) <= wanted.height }.first?.name ?? video.last?.name
        }
        return LadderPlan(video: video, audio: audio,
                          segmentSeconds: segmentSeconds(preset: preset, duration: source.duration),
                          leadSegmentSeconds: leadSegmentSeconds(preset: preset, duration: source.duration),
                          muxAudio: (preset.muxAudio ?? true) && !video.isEmpty && !audio.isEmpty,
                          keyframeSeconds: preset.keyframeSeconds, keyframeMinChange: preset.keyframeMinChange ?? 0,
                          fullWidth: full.0, fullHeight: full.1, download: download)
    }

    /// The rung's VBV buffer, shrunk in proportion when the lecture's segments are shorter than the
    /// preset's: the buffer is what a segment may carry above the cap, so the peak a short segment
    /// declares stays where the preset put it (with 2-s segments and the full buffer, the 144p rung of
    /// the 7-9-s test lectures went over the 192 kb/s that `validate` allows the weakest variant).
    static func bufferKbps(_ r: Preset.Rung, segmentRatio: Double) -> Int {
        let full = r.bufferKbps ?? 2 * r.maxKbps
        return segmentRatio < 1 ? max(16, Int((Double(full) * segmentRatio).rounded())) : full
    }

    /// The preset's segment length, shortened for a lecture of exactly two segments to the largest
    /// multiple of the keyframe interval that gives it three or more (a lecture of one segment gives a
    /// player nothing to switch to). A player that switches variant
    /// after the first segment then still has a segment to play after the switch: GStreamer 1.22's
    /// hlsdemux (playbin) stalls for good when its first switch lands on the last segment (an 8-s
    /// source in 6-s segments hung in 4 of 6 runs; in 2-s segments it played to the end in 8 of 8).
    static func segmentSeconds(preset: Preset, duration: Double) -> Double {
        let wanted = preset.segmentSeconds
        guard duration > wanted, duration <= 2 * wanted else { return wanted }
        let steps = (duration / 3 / preset.keyframeSeconds).rounded(.down)
        return max(1, steps) * preset.keyframeSeconds
    }

    /// The preset's short lead segments for a lecture of more than two full segments; a shorter one
    /// keeps whole segments (`segmentSeconds`), so it still has three or more.
    static func leadSegmentSeconds(preset: Preset, duration: Double) -> Double? {
        guard let lead = preset.leadSegmentSeconds, duration > 2 * preset.segmentSeconds else { return nil }
        return lead
    }

    /// Scales each rendition from the next larger one's picture instead of from the decoded picture.
    /// A Lanczos downscale costs in proportion to the pixels of its input, so on a 1080p source the
    /// ladder's scaling costs a third of scaling every rung from 1080p (libswscale was 41% of the CPU
    /// time of a 1080p screencast). Scaled back up, the screencast's lower rungs score the same VMAF or
    /// better than when scaled directly; a 720p lecture's 360p rung loses 1.2 (BENCHMARKS.md).
    private static func chainScaling(_ video: inout [VideoRenditionPlan]) {
        for i in video.indices.dropFirst() {
            video[i].scaledFrom = video[i - 1].name
        }
    }

    private static func even(_ x: Double) -> Int { max(2, Int((x / 2).rounded()) * 2) }
}
