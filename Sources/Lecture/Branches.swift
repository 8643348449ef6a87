import Foundation
import LectureModel
import FFmpeg
import Synchronization

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
    private let failure = Mutex<Error?>(nil)
    private let done = DispatchSemaphore(value: 0)
    let name: String

    /// Four frames a branch: on the bench lecture 4-6 MB less peak memory than six, the same wall time
    /// in six alternating runs each; three cost 0.8 s (BENCHMARKS.md, 2026-12-07, "branch queues").
    init(_ branch: Branch, capacity: Int = 4) {
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
                if failure.withLock({ $0 }) == nil { try branch.finish() }
            } catch {
                failure.withLock { $0 = error }
                queue.abandon()
            }
        }
        thread.name = "coursepack-\(name)"
        thread.stackSize = 4 << 20
        thread.start()
    }

    /// Hands a frame to the branch; false when the branch has failed.
    func put(_ frame: Frame) -> Bool { queue.put(Transfer(frame)) }

    var error: Error? { failure.withLock { $0 } }

    /// Ends the input and waits for the branch to finish.
    func finishAndWait() {
        queue.finish()
        done.wait()
    }

    /// Stops the branch without finishing its outputs, and waits for it.
    func abortAndWait() {
        failure.withLock { if $0 == nil { $0 = CancellationError() } }
        queue.abandon()
        done.wait()
    }
}

/// HLS muxer options shared by every rendition: fMP4 (CMAF) segments cut by libavformat, which
/// keeps a one-segment window (its records of older segments are freed); the VOD playlist is
/// written from the segment files when the rendition is done (`VODPlaylist`). With lead segments,
/// `hls_init_time` ends the first segment at `lead`, the second at twice the lead, and later ones
/// every `segmentSeconds` from the lead, each at the first keyframe at or past that time (the
/// keyframe plan puts segment starts there: `KeyframePlanner.startsSegment`). `skip_sidx`: no
/// `sidx` boxes, which HLS does not read.
///
/// Segments are one movie fragment each. Cut inside into 1-s fragments (`frag_duration`), a
/// variable-rate source's 216p rung had a decoding time that went back at a fragment boundary: the
/// packet durations are set for fragments that start at keyframes (`VideoBranch.writeGOP`), and
/// movenc starts each fragment where the last one's pictures end (BENCHMARKS.md, 2026-12-06
/// 22:35-23:10).
func hlsOptions(directory: URL, segmentSeconds: Double, lead: Double?) -> [String: String] {
    var options = [
        "hls_time": String(segmentSeconds),
        "hls_list_size": "1",
        "hls_segment_type": "fmp4",
        "hls_fmp4_init_filename": "init.mp4",
        "hls_segment_filename": directory.appendingPathComponent("seg_%05d.m4s").path,
        "hls_flags": "independent_segments",
        "hls_segment_options": "movflags=+skip_sidx",
    ]
    if let lead { options["hls_init_time"] = String(lead) }
    return options
}

/// One HLS rendition folder (`index.m3u8`, `init.mp4`, segments) and the muxer that writes it, with
/// one stream per encoder. A video variant with its sound muxed in is written by two branches, each
/// on its own thread: every use of the muxer is under the lock, and the last stream to end writes
/// the trailer and the playlist.
///
/// Every rendition of a package shares one timeline, so a player that switches variant finds the
/// next segment where the last one ended. x264 hands out decoding times a reordering delay (in
/// frames) before presentation times: a keyframe's decoding time is the presentation time of the
/// picture two before it, which lies at a different distance in a 10-fps rung than in a 25-fps one,
/// or after an irregular gap of a variable-rate source. Segment start times (`tfdt`) and `#EXTINF`
/// durations, both counted in decoding time, then differed between rungs (by 67 ms on a phone clip,
/// 80 ms on a 25-fps Matroska file), and Chromium stalled for good when it switched variant there.
/// So every rendition's decoding times are rewritten to one rule (`VideoBranch.writeGOP`): a keyframe
/// decodes its rendition's own lag before it presents, so every segment starts (`tfdt`) at its
/// keyframe's presentation time in every rung. Every rendition is moved later by the same
/// `timestampOffset` (the ladder's largest lag), so no time is negative and every rendition presents
/// on one clock; and the two streams of a muxed rendition are ordered by presentation order (a video
/// packet counts from its decoding time plus its lag): each segment's sound starts where its first
/// picture does.
final class RenditionOutput: @unchecked Sendable {
    // @unchecked Sendable: everything but the constants is touched only under `lock`, except
    // `timestampOffset`, which is set before any branch starts.
    private let lock = NSLock()
    private let muxer: Muxer
    let directory: URL
    private let independentSegments: Bool
    private let options: [String: String]
    /// Seconds added to a stream's decoding times to order it against the others: a video stream's
    /// decode lag (`VideoBranch.decodeLag`), 0 for audio.
    private let orderingLead: [Double]
    private var queues: [[(key: Double, packet: Packet)]]
    private var ended: [Bool]
    private var started = false
    /// Seconds added to every timestamp of the rendition; the same in every rendition of a package
    /// (the ladder's largest decode lag).
    var timestampOffset = 0.0

    /// - Parameter orderingLead: per encoder, seconds its packets' decoding times run behind their
    ///   presentation times (a video encoder's decode lag; 0 for audio).
    init(directory: URL, encoders: [Encoder], orderingLead: [Double]? = nil, segmentSeconds: Double, lead: Double?,
         independentSegments: Bool) throws {
        self.directory = directory
        self.independentSegments = independentSegments
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        muxer = try Muxer(path: directory.appendingPathComponent("index.m3u8").path, format: "hls")
        for e in encoders { try muxer.addStream(for: e) }
        options = hlsOptions(directory: directory, segmentSeconds: segmentSeconds, lead: lead)
        self.orderingLead = orderingLead ?? Array(repeating: 0, count: encoders.count)
        queues = Array(repeating: [], count: encoders.count)
        ended = Array(repeating: false, count: encoders.count)
    }

    /// The header is written with the first packet, once `timestampOffset` is known.
    private func start() throws {
        guard !started else { return }
        started = true
        var o = options
        if timestampOffset > 0 { o["output_ts_offset"] = String(format: "%.6f", timestampOffset) }
        try muxer.writeHeader(options: o)
    }

    func write(_ packet: Packet, stream: Int) throws {
        try lock.withLock {
            try start()
            guard queues.count > 1 else { return try muxer.write(packet, stream: stream) }
            let t = (packet.dts ?? packet.pts).map { packet.timeBase.seconds($0) } ?? 0
            queues[stream].append((t + orderingLead[stream], packet))
            try drain()
        }
    }

    /// How far ahead (seconds of keys) a stream's queue may run while another stream has nothing
    /// waiting. Both branches are fed by the same decode loop, so a stream this far behind has a
    /// hole (sound that stops early or starts late): its packets no longer hold the other's back,
    /// and memory stays bounded.
    static let maxWait = 10.0

    /// Writes queued packets in order of their keys while every stream that has not ended has one
    /// waiting (a packet later in the other stream may still come before them), or while a queue
    /// spans more than `maxWait`.
    private func drain() throws {
        while true {
            let waiting = queues.indices.filter { !queues[$0].isEmpty }
            guard let next = waiting.min(by: { queues[$0][0].key < queues[$1][0].key }) else { return }
            let complete = queues.indices.allSatisfy { !queues[$0].isEmpty || ended[$0] }
            let overdue = waiting.first { queues[$0].last!.key - queues[$0][0].key > Self.maxWait }
            guard let stream = complete ? next : overdue else { return }
            let item = queues[stream].removeFirst()
            try muxer.write(item.packet, stream: stream, interleaved: false)
        }
    }

    /// One stream has ended; after the last, the trailer and the VOD playlist are written.
    func finish(stream: Int) throws {
        try lock.withLock {
            ended[stream] = true
            try start()
            try drain()
            guard ended.allSatisfy({ $0 }) else { return }
            try muxer.finish()
            if queues.count > 1 { try fenceTrackData() }
            try VODPlaylist.write(directory: directory, independentSegments: independentSegments)
        }
    }
}

extension RenditionOutput {
    /// In a rendition with its sound muxed in, each segment gets `MP4Fragments.trackDataFence` between
    /// the pictures and the sound in its `mdat` (why: `MP4Fragments.trackDataFence`).
    fileprivate func fenceTrackData() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix("seg_") && $0.hasSuffix(".m4s") }
        for name in names {
            let url = directory.appendingPathComponent(name)
            let bytes: Data
            do { bytes = try Data(contentsOf: url) } catch {
                throw CoursePackError(.output, path: url.path, "cannot read the segment back: \(error.localizedDescription)")
            }
            let fenced: Data?
            do { fenced = try MP4Fragments.fencingTrackData(bytes) } catch {
                throw CoursePackError(.output, path: url.path, "the muxer's segment does not parse: \(error)")
            }
            if let fenced { try OutputFile.write(fenced, to: url) }
        }
    }
}

/// Scale, cap the frame rate, force keyframes at shared timestamps, encode with libx264 and segment.
final class VideoBranch: Branch {
    let name: String
    let plan: VideoRenditionPlan
    private let encoder: Encoder
    /// This rendition's folder: stream 0 is the picture; with its sound muxed in, stream 1 is the
    /// audio branch's (`AudioBranch.addOutput`).
    let output: RenditionOutput
    private var scaler: Scaler?
    /// The last picture this branch scaled, for a frame with the same picture (`Frame.pictureID`).
    private var lastScaled: Frame?
    /// Where the pictures that came in since this branch last made one changed (`Frame.changed`, joined);
    /// nil when not known.
    private var pending: PictureRegion? = .same
    private let timeBase = Rational(1, 90_000)
    private var keyframeOwed = false
    private var nextDue = -Double.infinity
    private let minInterval: Double?
    private let keyframeSeconds: Double
    private let lead: Double?
    private var lastPTS: Int64 = .min
    /// Source time of the last picture kept (frame-rate-capped rungs).
    private var lastKeptTime: Double?
    private var lastInputTime: Double?
    private var lastInputInterval: Double?
    private let frameDuration: Int64
    private(set) var stats = BranchStats()
    /// Seconds this rendition's packets decode before they present: its encoder's reorder frames at
    /// its frame rate (0.2 s at 10 fps, 0.067 s at 30), x264's own lag, kept so that players' and
    /// demuxers' timestamp checks see what they expect (FFmpeg 5.1's HLS reader took a lag of 0.4 s
    /// at 25 fps for a discontinuity). `RenditionOutput.timestampOffset` is the ladder's largest.
    let decodeLag: Double
    /// Presentation times of the pictures sent to the encoder and not yet out of it, in order.
    private var sentTimes: [Int64] = []
    private var sentHead = 0
    private var lastDTS: Int64?
    /// Runners of the renditions scaled from this one's picture (`VideoRenditionPlan.scaledFrom`);
    /// each gets a reference to every picture this branch makes, before its own frame-rate cap.
    /// Set before the branch starts.
    var downstream: [BranchRunner] = []

    /// x264 zone bit rate factor for the pictures of the lead segments.
    static let leadBitrateFactor = 0.5

    /// - Parameter audio: the encoder of the sound to mux into this rendition's segments, if any.
    init(plan: VideoRenditionPlan, directory: URL, segmentSeconds: Double, keyframeSeconds: Double, lead: Double?, x264Tune: String?, x264Params: String?,
         audio: Encoder? = nil) throws {
        self.name = plan.name
        self.plan = plan
        self.keyframeSeconds = keyframeSeconds
        self.lead = lead
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
        if let p = plan.x264Params, !p.isEmpty { params.append(p) }
        if let lead {
            // The two lead segments hold two extra IDR pictures in the first of the windows that set the
            // variant's declared peak (runs of segments lasting 0.5-1.5 target durations); at full
            // quality 0.5-s leads raised the 240p-720p peaks by 10-20% on the bench lecture. Encoded at
            // half the rate factor the peaks stayed within 1-3% of those of a single 1-s lead segment
            // (0.002-0.003 lower SSIM in the first second); with 2-s leads the 216p-360p peaks are 1-5%
            // above those of 0.5-s leads (BENCHMARKS.md, 2026-12-07).
            let frames = max(1, Int((2 * lead * plan.frameRate).rounded(.up)))
            params.append("zones=0,\(frames - 1),b=\(VideoBranch.leadBitrateFactor)")
        }
        options["x264-params"] = params.joined(separator: ":")
        if let t = x264Tune { options["tune"] = t }
        config.options = options
        encoder = try Encoder(video: config)
        stats.extradata = encoder.extradata
        decodeLag = Double(encoder.reorderFrames) / plan.frameRate
        let encoders = [encoder] + (audio.map { [$0] } ?? [])
        output = try RenditionOutput(directory: directory, encoders: encoders,
                                     orderingLead: [decodeLag] + (audio.map { _ in [0] } ?? []),
                                     segmentSeconds: segmentSeconds, lead: lead, independentSegments: true)
    }

    func consume(_ frame: Frame) throws {
        stats.framesIn += 1
        // Every picture that comes in counts, also those dropped below: the next picture made differs
        // from the last one made wherever any of them changed.
        if let p = pending, let c = frame.changed { pending = p.union(c) } else { pending = nil }
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
        // A picture too close before the next keyframe time goes too: a keyframe is kept whatever
        // its time, and two pictures 33 ms apart in a 10-fps rung fall on one tick of its frame rate
        // (FFmpeg's CLI refused such a rendition as non-monotonic).
        let crowded = minInterval.map { !atKeyframe && nextKeyframeTime(after: t) - t < 0.75 * $0 } ?? false
        // Nor does a picture come within 0.9 of the cap's interval of the last one kept: after a gap or
        // a late picture the pacing below would let the next source picture through 33 ms later (seen
        // on a variable-rate source after a 0.8-s gap, at 15 fps: FFmpeg's CLI put both on one tick and
        // refused the rendition), and a 25-fps source capped at 15 gets an even 12.5 instead of
        // alternating 80- and 40-ms steps.
        let tooClose = minInterval.map { m in !atKeyframe && lastKeptTime.map { t - $0 < 0.9 * m } == true } ?? false
        let dropped = (minInterval.map { !atKeyframe && t < nextDue - 0.25 * $0 } ?? false) || crowded || tooClose || pts <= lastPTS
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
        lastKeptTime = t
        sentTimes.append(pts)
        try encoder.send(picture)
        stats.framesEncoded += 1
        try drain()
    }

    /// The first keyframe time after `t` seconds, where a keyframe may come (`KeyframePlanner.time`):
    /// the lead, twice the lead, then every `keyframeSeconds`.
    func nextKeyframeTime(after t: Double) -> Double {
        let eps = 1e-6
        if let lead {
            if t < lead - eps { return lead }
            if t < 2 * lead - eps { return 2 * lead }
            return 2 * lead + (((t - 2 * lead + eps) / keyframeSeconds).rounded(.down) + 1) * keyframeSeconds
        }
        return (((t + eps) / keyframeSeconds).rounded(.down) + 1) * keyframeSeconds
    }

    /// The frame at this rendition's size and format, with the frame's timestamp and time base: the
    /// frame itself when it already fits (this branch's own reference, no copy), else scaled. A frame
    /// with the picture of the last one scaled (a still screen: the same `Frame.pictureID`) gets a
    /// reference to that scaled picture instead: the same pixels without the scaler's work.
    ///
    /// The picture made carries where it differs from the one made before it (`Frame.changed`), for the
    /// renditions scaled from it: a scaled picture is made again only where its source changed
    /// (`Scaler.scale(_:from:changed:)`) when that is the smaller part.
    private func picture(of frame: Frame) throws -> Frame {
        let change = pending
        pending = .same
        if frame.width == plan.width, frame.height == plan.height, frame.pixelFormat == .yuv420p {
            frame.changed = change
            return frame
        }
        if frame.pictureID != 0, let last = lastScaled, last.pictureID == frame.pictureID {
            let picture = last.reference()
            picture.takeTiming(of: frame)
            picture.changed = .same
            stats.scalesReused += 1
            return picture
        }
        if let s = scaler, s.sourceMatches(frame) == false {
            scaler = nil
            lastScaled = nil
        }
        if scaler == nil {
            scaler = try Scaler(sourceWidth: frame.width, sourceHeight: frame.height, sourceFormat: frame.pixelFormat,
                                width: plan.width, height: plan.height)
        }
        let byZimg = scaler!.zimgScales
        let picture: Frame
        if let last = lastScaled, let change, let part = try scaler!.scale(frame, from: last, changed: change) {
            picture = part.picture
            picture.changed = part.changed
            stats.scaledPartly += 1
        } else {
            picture = try scaler!.scale(frame)
            picture.changed = nil
        }
        stats.scaled += 1
        if scaler!.zimgScales > byZimg { stats.scaledByZimg += 1 }
        picture.pictureID = frame.pictureID
        lastScaled = picture.reference()
        return picture
    }

    func finish() throws {
        try encoder.send(nil)
        try drain()
        // The last picture lasts until the end of the source's last frame, so every rendition ends
        // together, also when the frame-rate cap dropped the pictures after it.
        let sourceEnd = lastInputTime.map { timeBase.timestamp($0 + (lastInputInterval ?? 1 / plan.frameRate)) }
        try writeGOP(next: nil, sourceEnd: sourceEnd)
        try output.finish(stream: 0)
        // What the rung holds (x264's pictures, the scaler's graphs and pool) goes now, not with the
        // pass: the chapter titles are read after the rungs end, in the memory they leave.
        encoder.close()
        scaler = nil
        lastScaled = nil
    }

    /// The packets of the GOP being encoded, in decoding order, each with its rule time
    /// (`nextRuleTime`): written when the next keyframe arrives (GOPs are closed: `open-gop=0`).
    private var gop: [(packet: Packet, rule: Int64)] = []
    private var firstDTS: Int64?

    private func drain() throws {
        while case let .value(packet) = try encoder.receive() {
            let rule = nextRuleTime()
            if packet.isKey, !gop.isEmpty {
                try writeGOP(next: (rule, packet.pts ?? rule), sourceEnd: nil)
            }
            gop.append((packet, rule))
        }
    }

    /// The n-th packet out of the encoder decodes at the n-th presentation time sent in, less
    /// `decodeLag`; `Int64.min` when the encoder gave more packets than it took pictures.
    private func nextRuleTime() -> Int64 {
        guard sentHead < sentTimes.count else { return Int64.min }
        let rule = sentTimes[sentHead] - timeBase.timestamp(decodeLag)
        sentHead += 1
        if sentHead > 256 {
            sentTimes.removeFirst(sentHead)
            sentHead = 0
        }
        return rule
    }

    /// Writes the buffered GOP with decoding times and durations by the rule of `RenditionOutput`.
    ///
    /// Decoding times: the keyframe's is its rule time, `decodeLag` before it presents, so every
    /// segment's `tfdt` is its keyframe's presentation time in every rung (the muxer counts a track's
    /// decoding times from its first). x264 gives a keyframe the presentation time of the picture two
    /// before it instead, which lies at another distance in a rung of another frame rate or after an
    /// irregular gap. Every other packet takes its rule time too, unless a packet decoded at or after
    /// it presents earlier (a B-picture after two intervals longer than the lag): then that
    /// presentation time; times rise strictly to the next keyframe's.
    ///
    /// Durations: with `+dash` (the HLS muxer's fMP4 flags) movenc makes each fragment's first picture
    /// present where the last fragment's pictures end (their largest presentation time plus
    /// duration), so every packet but the GOP's last lasts until the next picture presents, and the
    /// last until the next keyframe decodes (a fragment's sample durations add up to the next
    /// `tfdt`). With decoding-time durations the muxer moved keyframes by up to a frame (0.0417 s at
    /// 24 fps), differently in every rung.
    private func writeGOP(next: (dts: Int64, pts: Int64)?, sourceEnd: Int64?) throws {
        guard !gop.isEmpty else { return }
        let n = gop.count
        let pts = gop.map { $0.packet.pts ?? $0.rule }
        var dts = [Int64](repeating: 0, count: n)
        var suffixMin = Int64.max
        var upper = next.map { $0.dts - 1 } ?? Int64.max
        for j in stride(from: n - 1, through: 0, by: -1) {
            suffixMin = min(suffixMin, pts[j])
            let candidate = j == 0 && gop[0].packet.isKey ? gop[0].rule : min(gop[j].rule, suffixMin)
            dts[j] = min(candidate, upper)
            upper = dts[j] - 1
        }
        let rising = zip(dts, dts.dropFirst()).allSatisfy { $0 < $1 } && (lastDTS.map { dts[0] > $0 } ?? true)
        if !rising || gop.contains(where: { $0.rule == Int64.min }) || zip(dts, pts).contains(where: { $0 > $1 }) {
            // Not reached with x264's closed GOPs; x264's own times are valid, if not aligned.
            dts = gop.map { $0.packet.dts ?? $0.rule }
        }
        let presented = pts.sorted()
        for (j, item) in gop.enumerated() {
            let packet = item.packet
            packet.dts = dts[j]
            if firstDTS == nil { firstDTS = dts[j] }
            if j == n - 1 {
                if let next {
                    packet.duration = max(1, next.dts - dts[j])
                } else if let end = sourceEnd, let first = firstDTS, end > dts[j] - first {
                    // Sample durations add up from the first decoding time: the last is what is
                    // left of the source's length after the others.
                    packet.duration = end - (dts[j] - first)
                } else {
                    packet.duration = lastInputInterval.map { max(1, timeBase.timestamp($0)) } ?? frameDuration
                }
            } else {
                let later = presented.first { $0 > pts[j] } ?? next?.pts ?? (pts[j] + frameDuration)
                packet.duration = max(1, later - pts[j])
            }
            lastDTS = dts[j]
            try write(packet)
        }
        gop.removeAll(keepingCapacity: true)
    }

    private func write(_ packet: Packet) throws {
        stats.bytes += packet.size
        try output.write(packet, stream: 0)
    }
}

/// Resample and encode (AAC-LC or Opus) one audio rendition, and write its packets to its own
/// rendition folder (an audio-only variant, or an audio group's rendition) and into the segments of
/// the video renditions that carry it.
final class AudioBranch: Branch {
    let name: String
    let plan: AudioRenditionPlan
    let encoder: Encoder
    private let resampler: Resampler
    /// Outputs and the stream of each this rendition's packets go to. Set before the branch starts.
    private var outputs: [(RenditionOutput, Int)] = []
    /// This rendition's own folder, if it has one.
    let ownOutput: RenditionOutput?
    private(set) var stats = BranchStats()

    /// - Parameter directory: the rendition's own folder, or nil when it is only muxed into video renditions.
    init(plan: AudioRenditionPlan, directory: URL?, segmentSeconds: Double, lead: Double?) throws {
        self.name = plan.name
        self.plan = plan
        var config = AudioEncoderConfig(sampleRate: plan.sampleRate, channels: plan.channels, bitRate: plan.kbps * 1000)
        switch plan.codec {
        case "opus":
            config.codec = "libopus"
            config.options = AudioBranch.opusOptions
        default:
            config.options = ["profile": "aac_low"]
            if let coder = plan.aacCoder { config.options["aac_coder"] = coder }
        }
        encoder = try Encoder(audio: config)
        stats.extradata = encoder.extradata
        resampler = try Resampler(for: encoder)
        let encoder = self.encoder
        let own = try directory.map {
            try RenditionOutput(directory: $0, encoders: [encoder], segmentSeconds: segmentSeconds, lead: lead, independentSegments: false)
        }
        ownOutput = own
        if let own { outputs.append((own, 0)) }
    }

    /// Also writes this rendition's packets to `stream` of `output` (a video rendition's segments).
    func addOutput(_ output: RenditionOutput, stream: Int) {
        outputs.append((output, stream))
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
        for (output, stream) in outputs { try output.finish(stream: stream) }
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
            // A muxer takes the packet it writes: every output but the last gets a reference.
            for (i, (output, stream)) in outputs.enumerated() {
                try output.write(i == outputs.count - 1 ? packet : try packet.reference(), stream: stream)
            }
        }
    }
}
