import Foundation
import LectureModel
import FFmpeg
import Logging
import CLinux

/// Where the lecture's time zero lies in the source's clock: the first video picture's time, or the
/// first audio frame's when there is no video. Audio decoded before the first picture waits for it
/// (at most `maxWaitingAudio` frames), so every rendition starts at 0 together.
struct Timeline {
    static let maxWaitingAudio = 2000
    private(set) var origin: Double?
    private var waitingAudio: [Frame] = []

    var hasStarted: Bool { origin != nil }

    /// Fixes time zero; returns the audio frames that were waiting for it, in order.
    mutating func start(at time: Double) -> [Frame] {
        precondition(origin == nil, "the timeline starts once")
        origin = time
        defer { waitingAudio = [] }
        return waitingAudio
    }

    /// Queues an audio frame that came before the first picture; false when the queue is full and
    /// the timeline should start at that frame instead.
    mutating func wait(_ frame: Frame) -> Bool {
        guard waitingAudio.count < Self.maxWaitingAudio else { return false }
        waitingAudio.append(frame)
        return true
    }

    /// The first waiting audio frame's time, for a source whose video never produced a picture time.
    var firstWaitingTime: Double? { waitingAudio.first?.time }

    /// A source time as seconds of the lecture; nil before the timeline starts.
    func lectureTime(_ sourceTime: Double) -> Double? { origin.map { sourceTime - $0 } }
}

/// The single decode pass, in the phases of FFmpeg's doc/examples/transcode.c: open the decoders,
/// read and decode every packet, flush the decoders (and the normaliser), then flush and finish
/// every branch, or abort them all on the first failure. Decoded frames are normalised (deinterlaced,
/// turned upright), put on the lecture's timeline and fanned out by reference to every branch.
final class OnePass {
    private let source: OpenedSource
    /// The package folder being written.
    private let outputFolder: URL
    private let limits: Limits
    private let logger: Logger
    private let progress: (@Sendable (TranscodeProgress) -> Void)?
    private let videoBranches: [VideoBranch]
    private let audioBranches: [AudioBranch]
    private let thumbnailBranch: ThumbnailBranch?
    private let chapterBranch: ChapterBranch?
    private let speechBranch: SpeechBranch?
    /// Every video runner: the rungs' in ladder order, then the extras'.
    private let videoRunners: [BranchRunner]
    /// The poster and storyboard's and the chapters' runners, finished after every other.
    private let extraRunners: [BranchRunner]
    /// The video runners that take decoded pictures; the others are fed by the branch they scale from.
    private let decodedRunners: [BranchRunner]
    private let audioRunners: [BranchRunner]
    private var runners: [BranchRunner] { videoRunners + audioRunners }
    private var corruptPackets = 0
    private var timeline = Timeline()
    private var normaliser: VideoFilter?
    /// The last picture handed on, and how many different ones were (`Frame.pictureID`).
    private var lastPicture: Frame?
    private var pictureCount = 0
    private var normaliserInput: (Int, Int, PixelFormat)?
    private var videoFrames = 0
    private var keyframes: KeyframePlanner
    private var audioFrames = 0

    /// The source's decoders; either may be absent.
    private struct Decoders {
        var video: Decoder?
        var audio: Decoder?
    }

    /// How far the read loop has got, for progress reports and the completeness check.
    private struct ReadState {
        let started = Date()
        var lastReport = Date.distantPast
        /// Seconds of the lecture read so far.
        var position = 0.0
        /// The end of the last packet's data in the source's clock.
        var dataEnd = -Double.infinity
    }

    /// The process's allocator set for the pass once, before its encoders and threads (`cp_malloc_tune`).
    private static let allocatorTuned = cp_malloc_tune() != 0

    /// `chaptersOnly`: no renditions, poster or storyboard, only the chapters (`Transcoder.chapters`).
    init(source: OpenedSource, plan: LadderPlan, preset: Preset, limits: Limits, extras: Bool, titleLanguages: String?, directory: URL, logger: Logger,
         progress: (@Sendable (TranscodeProgress) -> Void)?, chaptersOnly: Bool = false, speech: (any SpeechRecognizer)? = nil) throws {
        var plan = plan
        if chaptersOnly { plan.video = []; plan.audio = [] }
        self.source = source
        outputFolder = directory
        self.limits = limits
        self.logger = logger
        if !Self.allocatorTuned { logger.notice("the C library refused the pass's allocator settings (cp_malloc_tune)") }
        self.progress = progress
        keyframes = KeyframePlanner(segmentSeconds: plan.segmentSeconds, keyframeSeconds: plan.keyframeSeconds,
                                    minChange: plan.keyframeMinChange, lead: plan.leadSegmentSeconds)
        do {
            // With the sound muxed into the video renditions, an audio rendition has a folder of its own
            // only when it is also offered on its own (audio-only).
            let audio = try plan.audio.map {
                try AudioBranch(plan: $0, directory: plan.muxAudio && !$0.audioOnly ? nil : directory.appendingPathComponent($0.name),
                                segmentSeconds: plan.segmentSeconds, lead: plan.leadSegmentSeconds)
            }
            audioBranches = audio
            videoBranches = try plan.video.map { v in
                let sound = plan.muxAudio ? audio.first { $0.name == v.audio } : nil
                let branch = try VideoBranch(plan: v, directory: directory.appendingPathComponent(v.name), segmentSeconds: plan.segmentSeconds,
                                             keyframeSeconds: plan.keyframeSeconds, lead: plan.leadSegmentSeconds, x264Tune: preset.x264Tune, x264Params: preset.x264Params,
                                             audio: sound?.encoder)
                sound?.addOutput(branch.output, stream: 1)
                return branch
            }
            if chaptersOnly, source.info.video != nil {
                thumbnailBranch = nil
                chapterBranch = try ChapterBranch(directory: directory.appendingPathComponent("chapters"), duration: source.info.duration,
                                                  stillSize: (plan.fullWidth, plan.fullHeight), languages: titleLanguages)
            } else if extras, let top = plan.video.first, let aspect = source.info.displayAspect {
                thumbnailBranch = try ThumbnailBranch(directory: directory.appendingPathComponent("thumbs"), duration: source.info.duration,
                                                      posterSize: (top.width, top.height), displayAspect: aspect)
                chapterBranch = try ChapterBranch(directory: directory.appendingPathComponent("chapters"), duration: source.info.duration,
                                                  stillSize: (plan.fullWidth, plan.fullHeight), languages: titleLanguages)
            } else {
                thumbnailBranch = nil
                chapterBranch = nil
            }
        } catch let e as MediaError where e.kind == .refusedOption {
            throw CoursePackError(.usage, path: directory.path, "preset \"\(preset.name)\": \(e.message)")
        } catch let e as MediaError {
            throw CoursePackError(e.kind == .io ? .output : .internal, path: directory.path, e.description)
        } catch let e as CoursePackError {
            throw e
        } catch {
            throw CoursePackError(.output, path: directory.path, "\(error)")
        }
        // One timeline for every rendition (`RenditionOutput.timestampOffset`, `VideoBranch.retime`).
        let offset = videoBranches.map(\.decodeLag).max() ?? 0
        for o in videoBranches.map(\.output) + audioBranches.compactMap(\.ownOutput) { o.timestampOffset = offset }
        let extras: [Branch] = [thumbnailBranch as Branch?, chapterBranch as Branch?].compactMap { $0 }
        // Branches are in ladder order, larger first, so a branch that hands its pictures on finishes
        // before the ones it feeds are told their input has ended.
        let branchRunners = videoBranches.map { BranchRunner($0) }
        for (branch, runner) in zip(videoBranches, branchRunners) {
            guard let from = branch.plan.scaledFrom else { continue }
            videoBranches.first { $0.name == from }?.downstream.append(runner)
        }
        let extraRunners = extras.map { BranchRunner($0) }
        self.extraRunners = extraRunners
        videoRunners = branchRunners + extraRunners
        decodedRunners = zip(videoBranches, branchRunners).filter { $0.0.plan.scaledFrom == nil }.map(\.1) + extraRunners
        // The speech recognizer takes the sound beside the audio renditions.
        speechBranch = source.info.selectedAudio != nil ? speech.map { SpeechBranch(recognizer: $0) } : nil
        audioRunners = audioBranches.map { BranchRunner($0) } + [speechBranch].compactMap { $0.map { BranchRunner($0) } }
    }

    func run() throws -> PassOutcome {
        var decoders: Decoders? = try openDecoders()
        runners.forEach { $0.start() }
        var state = ReadState()
        do {
            try readLoop(decoders!, &state)
            try flushDecoders(decoders!)
            try checkComplete(dataEnd: state.dataEnd)
            try checkDecodedSomething()
        } catch {
            abortBranches()
            if let e = error as? MediaError { throw CoursePackError.input(source.info.path, e) }
            throw error
        }
        // The decoders' picture pools go before the branches end (see `finishBranches`).
        decoders = nil
        try finishBranches()
        progress?(TranscodeProgress(position: max(state.position, source.info.duration), duration: source.info.duration,
                                    elapsed: Date().timeIntervalSince(state.started)))
        return PassOutcome(video: videoBranches.map { ($0.plan, $0.stats) },
                           audio: audioBranches.map { ($0.plan, $0.stats) },
                           thumbnails: thumbnailBranch?.summary, chapters: chapterBranch?.chapters ?? [],
                           corruptPackets: corruptPackets)
    }

    // MARK: - Phases

    /// Decoder threads for a source of this many pixels a picture: one up to 1080p, where a second frame
    /// thread only added its own context and pictures (peak RSS 7-10 MB less on the 720p bench lecture
    /// and camera talk, 10-14 MB less on the 1080p screencast and a 1080p camera shot, wall the same or
    /// lower, the same bytes; BENCHMARKS.md, 2026-12-07, "one decoder thread" and "... up to 1080p");
    /// two above it, where the decode alone could hold back the pass.
    static func decoderThreads(pixels: Int) -> Int { pixels <= 1920 * 1080 ? 1 : 2 }

    /// Opens a decoder for the video stream and one for the selected audio stream.
    private func openDecoders() throws -> Decoders {
        let info = source.info
        do {
            return Decoders(video: try info.video.map {
                                try Decoder(demuxer: source.demuxer, streamIndex: $0.index, threads: Self.decoderThreads(pixels: $0.width * $0.height),
                                            maxPixels: limits.maxPixels)
                            },
                            audio: try info.selectedAudio.map { try Decoder(demuxer: source.demuxer, streamIndex: $0, threads: 1) })
        } catch let e as MediaError {
            throw CoursePackError(.badInput, path: info.path, e.description)
        }
    }

    /// Reads every packet, decodes the two selected streams and hands their frames on; other streams'
    /// packets are dropped. Reports progress about twice a second and stops at a branch's failure.
    private func readLoop(_ decoders: Decoders, _ state: inout ReadState) throws {
        while let packet = try source.demuxer.read() {
            switch packet.streamIndex {
            case decoders.video?.streamIndex: try decode(packet, with: decoders.video!, video: true)
            case decoders.audio?.streamIndex: try decode(packet, with: decoders.audio!, video: false)
            default: continue
            }
            if let t = packet.time {
                if let lectureTime = timeline.lectureTime(t) { state.position = max(state.position, lectureTime) }
                state.dataEnd = max(state.dataEnd, t + packet.timeBase.seconds(packet.duration))
            }
            let now = Date()
            if let progress, now.timeIntervalSince(state.lastReport) >= 0.5 {
                state.lastReport = now
                progress(TranscodeProgress(position: state.position, duration: source.info.duration, elapsed: now.timeIntervalSince(state.started)))
            }
            try throwIfABranchFailed()
        }
    }

    /// Drains the frames each decoder still holds, then the normaliser's; starts the timeline from the
    /// waiting audio if no picture ever did.
    private func flushDecoders(_ decoders: Decoders) throws {
        if let d = decoders.video { try decode(nil, with: d, video: true) }
        if let d = decoders.audio { try decode(nil, with: d, video: false) }
        try flushNormaliser()
        if !timeline.hasStarted, let t = timeline.firstWaitingTime { try startTimeline(at: t) }
        try throwIfABranchFailed()
    }

    /// A source whose selected streams decoded to nothing is refused, not packaged empty.
    private func checkDecodedSomething() throws {
        if source.info.video != nil && videoFrames == 0 {
            throw CoursePackError(.badInput, path: source.info.path, "no decodable video frames (\(corruptPackets) corrupt packets)")
        }
        if source.info.video == nil && audioFrames == 0 {
            throw CoursePackError(.badInput, path: source.info.path, "no decodable audio frames (\(corruptPackets) corrupt packets)")
        }
    }

    /// Ends every branch's input; each flushes its encoder and closes its outputs on its own thread.
    /// The rungs and the sound end first, each letting go of its encoder as it ends; the extras end
    /// last, so the chapters' slide text is read (`SlideReader`) in the memory the encoders leave and
    /// Tesseract's never adds to theirs.
    private func finishBranches() throws {
        runners.filter { r in !extraRunners.contains { $0 === r } }.forEach { $0.finishAndWait() }
        let rungsEnded = Date()
        extraRunners.forEach { $0.finishAndWait() }
        logger.debug("thumbnails and chapters (their slide text read) ended \(String(format: "%.2f", Date().timeIntervalSince(rungsEnded))) s after the rungs")
        logger.debug("keyframes: \(keyframes.placed) placed, \(keyframes.skipped) left out where the picture had not changed")
        let reused = videoBranches.map { "\($0.name) \($0.stats.scalesReused)" }.joined(separator: ", ")
        logger.debug("pictures: \(pictureCount) different of \(videoFrames); scaled pictures reused: \(reused)")
        let scaled = videoBranches.filter { $0.stats.scaled > 0 }
            .map { "\($0.name) \($0.stats.scaledByZimg) of \($0.stats.scaled) (\($0.stats.scaledPartly) only where they changed)" }
        logger.debug("pictures resized by zimg: \(scaled.joined(separator: ", "))")
        try throwIfABranchFailed()
    }

    /// Stops every branch without finishing its outputs (the package is discarded).
    private func abortBranches() {
        runners.forEach { $0.abortAndWait() }
    }

    private func throwIfABranchFailed() throws {
        if let failed = runners.first(where: { $0.error != nil }), let error = failed.error {
            throw CoursePackError.rendition(failed.name, path: outputFolder.path, error)
        }
    }

    /// An MP4 or MOV whose index promises more media than its file holds was cut short (an upload
    /// that did not finish): refuse it rather than package part of a lecture.
    private func checkComplete(dataEnd: Double) throws {
        guard source.demuxer.formatName.hasPrefix("mov") else { return }
        let selected = [source.info.video?.index, source.info.selectedAudio].compactMap { $0 }
        let declared = source.demuxer.streams.filter { selected.contains($0.index) }
            .compactMap { s in s.duration.map { (s.startTime ?? 0) + $0 } }.max()
        guard let declared, declared > 0 else { return }
        if !dataEnd.isFinite || dataEnd < declared * 0.9 - 0.5 {
            throw CoursePackError(.badInput, path: source.info.path,
                                  String(format: "file is truncated: media data ends at %.1f s of the %.1f s its index declares",
                                         max(0, dataEnd.isFinite ? dataEnd : 0), declared))
        }
    }

    // MARK: - Decoding

    /// A decoder that fails this many times in a row without a frame between is not skipping a bad
    /// packet but stuck; the lecture fails rather than spin.
    static let maxReceiveErrorsInARow = 64

    /// Sends one packet (nil: end of stream) and hands on every frame the decoder gives back.
    private func decode(_ packet: Packet?, with decoder: Decoder, video: Bool) throws {
        if let packet, packet.isCorrupt { corruptPackets += 1 }
        do {
            try decoder.send(packet)
        } catch let e as MediaError where e.isDataError {
            corruptPackets += 1
            return
        }
        do {
            try Self.receiveAll(from: { try decoder.receive() }, dataError: { corruptPackets += 1 }) { frame in
                if frame.isDamaged { corruptPackets += 1 }
                if video { try handleVideo(frame) } else { try handleAudio(frame) }
            }
        } catch let stuck as DecoderStuck {
            throw CoursePackError(.badInput, path: source.info.path, "the \(video ? "video" : "audio") decoder keeps failing: \(stuck.last)")
        }
    }

    /// A decoder that failed `maxReceiveErrorsInARow` times in a row; `last` is its last error.
    struct DecoderStuck: Error {
        let last: MediaError
    }

    /// Hands on every value `receive` gives until it needs input or ends. An error that blames the data
    /// is counted (`dataError`) and skipped, but `limit` of them in a row without a value between
    /// throws `DecoderStuck` rather than spin; any other error is thrown as it is.
    static func receiveAll<Value>(from receive: () throws -> Pull<Value>, limit: Int = maxReceiveErrorsInARow,
                                  dataError: () -> Void, handle: (Value) throws -> Void) throws {
        var errorsInARow = 0
        while true {
            let result: Pull<Value>
            do {
                result = try receive()
            } catch let e as MediaError where e.isDataError {
                dataError()
                errorsInARow += 1
                if errorsInARow >= limit { throw DecoderStuck(last: e) }
                continue
            }
            guard case let .value(value) = result else { return }
            errorsInARow = 0
            try handle(value)
        }
    }

    // MARK: - Video

    private func handleVideo(_ frame: Frame) throws {
        guard frame.pts != nil else { return }
        let shape = (frame.width, frame.height, frame.pixelFormat)
        if normaliserInput == nil || normaliserInput! != shape {
            // The first picture, or the picture changed shape mid-stream: drain the old graph, build a new one.
            normaliserInput = shape
            try flushNormaliser()
            normaliser = try makeNormaliser(for: frame)
        }
        if let n = normaliser {
            try n.push(frame)
            try drainNormaliser(n)
        } else {
            try distributeVideo(frame)
        }
    }

    /// Ends the normaliser's input and hands on what it still holds.
    private func flushNormaliser() throws {
        guard let n = normaliser else { return }
        try n.push(nil)
        try drainNormaliser(n)
    }

    /// Hands on every picture the normaliser has ready.
    private func drainNormaliser(_ n: VideoFilter) throws {
        while case let .value(f) = try n.pull() { try distributeVideo(f) }
    }

    /// Deinterlace and rotate upright in one libavfilter graph; nil when the frame needs neither.
    private func makeNormaliser(for frame: Frame) throws -> VideoFilter? {
        guard let v = source.info.video else { return nil }
        var filters: [String] = []
        if FieldOrder(rawValue: v.fieldOrder)?.isInterlaced == true {
            filters.append("bwdif=mode=send_frame:parity=auto:deint=all")
        } else if frame.isInterlaced {
            filters.append("bwdif=mode=send_frame:parity=auto:deint=interlaced")
        }
        switch v.rotation {
        case 90: filters.append("transpose=clock")
        case 180: filters.append("hflip,vflip")
        case 270: filters.append("transpose=cclock")
        default: break
        }
        guard !filters.isEmpty else { return nil }
        let graph = filters.joined(separator: ",")
        logger.debug("normalising with \(graph)")
        do {
            return try VideoFilter(graph, input: frame, threads: 1)
        } catch let e as MediaError where e.kind == .unavailable {
            // The machine lacks the library and the source is not at fault: another worker can run it.
            throw CoursePackError(.internal, path: source.info.path, "the source needs \(graph), and \(e.description)")
        }
    }

    private func distributeVideo(_ frame: Frame) throws {
        guard let t = frame.time else { return }
        if !timeline.hasStarted { try startTimeline(at: t) }
        let lectureTime = timeline.lectureTime(t)!
        frame.pts = frame.timeBase.timestamp(lectureTime)
        try keyframes.mark(frame, at: lectureTime)
        videoFrames += 1
        // A picture equal to the last one (a still screen: 71 % of the bench screencast's) keeps its
        // id, so the renditions reuse what they scaled from it; one that differs carries where, so they
        // scale again only what that reaches (a slide's speaker inset).
        frame.changed = lastPicture.flatMap { last in frame.change(since: last) ?? (frame.hasSamePicture(as: last) ? .same : nil) }
        if let last = lastPicture, frame.changed?.isEmpty == true {
            frame.pictureID = last.pictureID
        } else {
            pictureCount += 1
            frame.pictureID = pictureCount
        }
        lastPicture = frame.reference()
        try fanOut(frame, to: decodedRunners)
    }

    // MARK: - Audio

    private func handleAudio(_ frame: Frame) throws {
        guard let t = frame.time else { return }
        if !timeline.hasStarted {
            if source.info.video != nil, timeline.wait(frame) { return }
            try startTimeline(at: t)
        }
        try distributeAudio(frame)
    }

    private func distributeAudio(_ frame: Frame) throws {
        guard let t = frame.time, let lectureTime = timeline.lectureTime(t) else { return }
        frame.pts = frame.timeBase.timestamp(lectureTime)
        audioFrames += 1
        try fanOut(frame, to: audioRunners)
    }

    // MARK: - Fan-out

    /// Starts the lecture's clock and hands on the audio that was waiting for it.
    private func startTimeline(at time: Double) throws {
        for f in timeline.start(at: time) { try distributeAudio(f) }
    }

    /// Every branch gets its own reference to the same decoded buffers; the last takes the frame itself.
    private func fanOut(_ frame: Frame, to runners: [BranchRunner]) throws {
        for (i, r) in runners.enumerated() {
            let f = i == runners.count - 1 ? frame : frame.reference()
            if !r.put(f) {
                if let error = r.error { throw CoursePackError.rendition(r.name, path: outputFolder.path, error) }
                throw CoursePackError(.internal, path: outputFolder.path, "rendition \(r.name) stopped")
            }
        }
    }
}
