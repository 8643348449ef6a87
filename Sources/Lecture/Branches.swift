public import Foundation
import FFmpeg

/// One output of the decode fan-out: it receives decoded frames, in order, on its own thread.
protocol Branch: AnyObject {
    var name: String { get }
    /// Handles one decoded frame whose timestamps already count from the lecture's start.
    func consume(_ frame: Frame) throws
    /// Flushes and closes outputs after the last frame.
    func finish() throws
}

/// Runs a branch on a dedicated thread behind a small bounded queue. libav's blocking encode and
/// mux calls stay off Swift's cooperative pool this way.
final class BranchRunner: @unchecked Sendable {
    // @unchecked Sendable: `branch` is touched only by the runner's thread once `start` is called;
    // `queue` and `failure` are thread-safe.
    private let branch: Branch
    private let queue: BoundedQueue<Transfer<Frame>>
    private let failure = LockedBox<Error?>(nil)
    private let done = DispatchSemaphore(value: 0)
    let name: String

    init(_ branch: Branch, capacity: Int = 6) {
        self.branch = branch
        self.name = branch.name
        queue = BoundedQueue(capacity: capacity)
    }

    func start() {
        let thread = Thread { [self] in
            defer { done.signal() }
            do {
                while let item = queue.take() {
                    try branch.consume(item.value)
                }
                if failure.value == nil { try branch.finish() }
            } catch {
                failure.value = error
                queue.abandon()
            }
        }
        thread.name = "coursepack-\(name)"
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Hands a frame to the branch; false when the branch has failed.
    func put(_ frame: Frame) -> Bool { queue.put(Transfer(frame)) }

    var error: Error? { failure.value }

    /// Ends the input and waits for the branch to finish.
    func finishAndWait() {
        queue.finish()
        done.wait()
    }

    /// Stops the branch without finishing its outputs, and waits for it.
    func abortAndWait() {
        failure.withValue { if $0 == nil { $0 = CancellationError() } }
        queue.abandon()
        done.wait()
    }
}

/// HLS muxer options shared by every rendition: fMP4 (CMAF) segments cut by libavformat, which
/// keeps a one-segment window (its records of older segments are freed); the VOD playlist is
/// written from the segment files when the rendition is done (`VODPlaylist`). With a lead segment,
/// `hls_init_time` ends the first segment at `lead` and the second at the next keyframe past twice
/// the lead (audio: at twice the lead); later ones every `segmentSeconds` from the lead.
func hlsOptions(directory: URL, segmentSeconds: Double, lead: Double?) -> [String: String] {
    var options = [
        "hls_time": String(segmentSeconds),
        "hls_list_size": "1",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4",
        "hls_segment_filename": directory.appendingPathComponent("seg_%05d.m4s").path,
        "hls_flags": "independent_segments",
    ]
    if let lead { options["hls_init_time"] = String(lead) }
    return options
}

/// Figures a branch reports when done.
struct BranchStats: Sendable {
    var framesIn = 0
    var framesEncoded = 0
    var bytes = 0
    var extradata: [UInt8] = []
}

/// Scale, cap the frame rate, force keyframes at shared timestamps, encode with libx264 and segment.
final class VideoBranch: Branch {
    let name: String
    let plan: VideoRenditionPlan
    private let encoder: Encoder
    private let muxer: Muxer
    private let directory: URL
    private var scaler: Scaler?
    private let timeBase = Rational(1, 90_000)
    private var keyframeOwed = false
    private var nextDue = -Double.infinity
    private let minInterval: Double?
    private var lastPTS: Int64 = .min
    private var lastInputTime: Double?
    private var lastInputInterval: Double?
    private let frameDuration: Int64
    private(set) var stats = BranchStats()
    /// Runners of the renditions scaled from this one's picture (`VideoRenditionPlan.scaledFrom`);
    /// each gets a reference to every picture this branch makes, before its own frame-rate cap.
    /// Set before the branch starts.
    var downstream: [BranchRunner] = []

    init(plan: VideoRenditionPlan, directory: URL, segmentSeconds: Double, lead: Double?, x264Tune: String?, x264Params: String?) throws {
        self.directory = directory
        self.name = plan.name
        self.plan = plan
        minInterval = plan.frameRateCap.map { 1 / $0 }
        let fps = Rational.approximating(plan.frameRate, max: 1001 * 1000)
        frameDuration = max(1, timeBase.timestamp(1 / plan.frameRate))
        // Keyframes come from forced IDR frames (`KeyframePlanner`); the encoder's own GOP limit sits
        // above the longest distance between them (a segment) so it never places one of its own first.
        var config = VideoEncoderConfig(width: plan.width, height: plan.height, timeBase: timeBase, frameRate: fps,
                                        gopSize: Int((plan.frameRate * segmentSeconds * 2).rounded(.up)) + 1)
        config.threads = plan.threads
        config.maxRate = plan.maxKbps * 1000
        config.bufferSize = plan.bufferKbps * 1000
        var options = ["preset": plan.x264Preset, "crf": String(plan.crf), "forced-idr": "1", "profile": "high"]
        var params = ["open-gop=0"]
        if let p = x264Params, !p.isEmpty { params.append(p) }
        options["x264-params"] = params.joined(separator: ":")
        if let t = x264Tune { options["tune"] = t }
        config.options = options
        encoder = try Encoder(video: config)
        stats.extradata = encoder.extradata
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        muxer = try Muxer(path: directory.appendingPathComponent("index.m3u8").path, format: "hls")
        try muxer.addStream(for: encoder)
        try muxer.writeHeader(options: hlsOptions(directory: directory, segmentSeconds: segmentSeconds, lead: lead))
    }

    func consume(_ frame: Frame) throws {
        stats.framesIn += 1
        guard let t = frame.time else { return }
        if let p = lastInputTime, t > p { lastInputInterval = t - p }
        lastInputTime = t
        // A keyframe comes from the decode pass's mark (`KeyframePlanner`); one whose picture is dropped
        // for its timestamp moves to the next picture kept.
        let atKeyframe = frame.isKeyframeRequested || keyframeOwed
        let pts = timeBase.timestamp(t)
        // Drop pictures above the cap, but never a keyframe, so every rendition switches GOP on the same
        // source picture; drop duplicate or backwards timestamps (variable frame rate sources).
        if pts <= lastPTS {
            keyframeOwed = atKeyframe
        }
        let dropped = (minInterval.map { !atKeyframe && t < nextDue - 0.25 * $0 } ?? false) || pts <= lastPTS
        if dropped && downstream.isEmpty { return }
        let picture = try picture(of: frame)
        for runner in downstream where !runner.put(picture.reference()) {
            throw MediaError(kind: .other, operation: "handing the picture on", message: "rendition \(runner.name) stopped")
        }
        if dropped { return }
        picture.timeBase = timeBase
        picture.pts = pts
        if keyframeOwed {
            // The picture types are otherwise the planner's marks, carried by references and scaled copies.
            picture.requestKeyframe()
            keyframeOwed = false
        }
        if let minInterval {
            nextDue = (t - nextDue > minInterval) ? t + minInterval : nextDue + minInterval
        }
        lastPTS = pts
        try encoder.send(picture)
        stats.framesEncoded += 1
        try drain()
    }

    /// The frame at this rendition's size and format, with the frame's timestamp and time base: the
    /// frame itself when it already fits (this branch's own reference, no copy), else scaled.
    private func picture(of frame: Frame) throws -> Frame {
        if frame.width == plan.width, frame.height == plan.height, frame.pixelFormat == .yuv420p { return frame }
        if let s = scaler, s.sourceMatches(frame) == false { scaler = nil }
        if scaler == nil {
            scaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                width: plan.width, height: plan.height)
        }
        return try scaler!.scale(frame)
    }

    func finish() throws {
        try encoder.send(nil)
        try drain()
        if let last = held {
            // The last picture lasts until the end of the source's last frame, so every rendition ends
            // together, also when the frame-rate cap dropped the pictures after it.
            // Sample durations add up from the first decode timestamp, so the last one is what is left
            // of the source's length after the others.
            let sourceEnd = lastInputTime.map { timeBase.timestamp($0 + (lastInputInterval ?? 1 / plan.frameRate)) }
            if let end = sourceEnd, let first = firstDTS, let dts = last.dts, end > dts - first {
                last.duration = end - (dts - first)
            } else {
                last.duration = lastInputInterval.map { max(1, timeBase.timestamp($0)) } ?? frameDuration
            }
            try write(last)
            held = nil
        }
        try muxer.finish()
        try VODPlaylist.write(directory: directory, independentSegments: true)
    }

    /// Each packet is held until the next one arrives, so its duration is the real distance to the
    /// next frame. The fMP4 muxer places each fragment after the previous one's last sample, so a
    /// nominal duration after a dropped or late frame would shift every later segment.
    private var held: Packet?
    private var firstDTS: Int64?

    private func drain() throws {
        while case let .value(packet) = try encoder.receive() {
            if firstDTS == nil { firstDTS = packet.dts }
            if let previous = held {
                if let a = previous.dts, let b = packet.dts, b > a { previous.duration = b - a }
                else if previous.duration == 0 { previous.duration = frameDuration }
                try write(previous)
            }
            held = packet
        }
    }

    private func write(_ packet: Packet) throws {
        stats.bytes += packet.size
        try muxer.write(packet, stream: 0)
    }
}

/// Resample, encode (AAC-LC or Opus) and segment one audio rendition.
final class AudioBranch: Branch {
    let name: String
    let plan: AudioRenditionPlan
    private let encoder: Encoder
    private let resampler: Resampler
    private let muxer: Muxer
    private let directory: URL
    private(set) var stats = BranchStats()

    init(plan: AudioRenditionPlan, directory: URL, segmentSeconds: Double, lead: Double?) throws {
        self.directory = directory
        self.name = plan.name
        self.plan = plan
        var config = AudioEncoderConfig(sampleRate: plan.sampleRate, channels: plan.channels, bitRate: plan.kbps * 1000)
        switch plan.codec {
        case "opus":
            config.codec = "libopus"
            config.options = AudioBranch.opusOptions
        default:
            config.options = ["profile": "aac_low"]
        }
        encoder = try Encoder(audio: config)
        stats.extradata = encoder.extradata
        resampler = try Resampler(for: encoder)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        muxer = try Muxer(path: directory.appendingPathComponent("index.m3u8").path, format: "hls")
        try muxer.addStream(for: encoder)
        try muxer.writeHeader(options: hlsOptions(directory: directory, segmentSeconds: segmentSeconds, lead: lead))
    }

    /// libopus for speech at low rates: the speech-tuned mode, 60 ms packets (a third of the per-sample
    /// boxes of 20 ms packets in each fragment) and constrained VBR, so a segment's size follows the
    /// bit rate and the declared peak stays near it.
    static let opusOptions = ["application": "voip", "frame_duration": "60", "vbr": "constrained"]

    func consume(_ frame: Frame) throws {
        stats.framesIn += 1
        // Audio before the first picture is dropped so both timelines start together at zero.
        guard let t = frame.time, t >= -1e-3 else { return }
        try resampler.push(frame)
        try encodeQueued(partial: false)
    }

    func finish() throws {
        try resampler.flush()
        try encodeQueued(partial: true)
        try encoder.send(nil)
        try drain()
        try muxer.finish()
        try VODPlaylist.write(directory: directory, independentSegments: false)
    }

    private func encodeQueued(partial: Bool) throws {
        while let f = try resampler.pull(size: encoder.frameSize, partial: partial) {
            try encoder.send(f)
            stats.framesEncoded += 1
            try drain()
        }
    }

    private func drain() throws {
        while case let .value(packet) = try encoder.receive() {
            stats.bytes += packet.size
            try muxer.write(packet, stream: 0)
        }
    }
}
