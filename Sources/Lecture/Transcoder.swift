public import Foundation
import FFmpeg
public import Logging

/// Progress of a run, reported from the reading thread about twice a second.
public struct TranscodeProgress: Sendable, Codable {
    /// Seconds of the lecture decoded so far.
    public var position: Double
    public var duration: Double
    /// Wall-clock seconds since decoding started.
    public var elapsed: Double
    public var fraction: Double { duration > 0 ? min(1, position / duration) : 0 }
    /// Media seconds per wall-clock second.
    public var speed: Double { elapsed > 0 ? position / elapsed : 0 }
    /// Estimated seconds left.
    public var eta: Double? { speed > 0 ? max(0, (duration - position) / speed) : nil }
}

/// What a run produced.
public struct TranscodeResult: Sendable, Codable {
    public var output: String
    public var source: SourceInfo
    public var plan: LadderPlan
    public var master: MasterSummary
    /// Poster and storyboard; nil for an audio-only source.
    public var thumbnails: ThumbnailSummary?
    /// Chapters found from slide changes, each with a full-resolution still.
    public var chapters: [Chapter]
    public var downloads: [DownloadSummary]
    public var corruptPackets: Int
    public var warnings: [String]
    public var elapsed: Double
}

public struct TranscodeOptions: Sendable {
    public var preset: Preset
    public var limits = Limits()
    /// Poster, storyboard, chapters and downloads besides the renditions (off to measure their cost).
    public var extras = true
    /// Caption files given on the command line; sidecars beside the input are added to them.
    public var captions: [CaptionInput] = []
    public var logger = Logger(label: "coursepack")
    public var progress: (@Sendable (TranscodeProgress) -> Void)?
    /// Cores the run may keep busy; encoder threads are planned for this many.
    public var cores = ProcessInfo.processInfo.activeProcessorCount
    /// Recorded in lecture.json's `build.key`.
    public var buildKey: String?
    /// Tesseract languages for chapter titles; nil takes the preset's (`Preset.ocrLanguages`).
    public var ocrLanguages: String?

    /// The languages chapter titles are read in; nil when no text is read.
    var titleLanguages: String? {
        let l = ocrLanguages ?? preset.ocrLanguages ?? "eng"
        return l.isEmpty ? nil : l
    }

    public init(preset: Preset) { self.preset = preset }
}

/// Transcodes one lecture into an HLS package in a single decode pass, and publishes it atomically.
public enum Transcoder {
    /// Finds the chapters of a lecture and reads their titles without transcoding it: the stills and
    /// chapters.vtt go to `directory`/chapters (a preview of what `run` would make).
    public static func chapters(input: String, directory: String, options: TranscodeOptions) throws -> [Chapter] {
        let source = try Source.open(input, limits: options.limits)
        guard source.info.video != nil else { throw CoursePackError(.badInput, path: input, "has no video stream to find chapters in") }
        try createFolder(directory)
        let plan = LadderPlan.make(source: source.info, preset: options.preset, cores: max(1, options.cores))
        return try OnePass(source: source, plan: plan, preset: options.preset, limits: options.limits, extras: true,
                           titleLanguages: options.titleLanguages, directory: URL(fileURLWithPath: directory), logger: options.logger,
                           progress: options.progress, chaptersOnly: true).run().chapters
    }

    public static func run(input: String, output: String, options: TranscodeOptions) throws -> TranscodeResult {
        let started = Date()
        let publisher = try Publisher(destination: output)
        do {
            let source = try Source.open(input, limits: options.limits)
            // Caption files are read before any decoding, so a malformed one fails fast.
            let captionTracks = try captionTracks(options.captions + CaptionInput.sidecars(of: input).filter { s in
                !options.captions.contains { URL(fileURLWithPath: $0.path).standardizedFileURL == URL(fileURLWithPath: s.path).standardizedFileURL }
            })
            let plan = LadderPlan.make(source: source.info, preset: options.preset, cores: max(1, options.cores))
            // The pass (encoders, scalers, muxers) is released as soon as it has run, so the downloads
            // remux below reuses its memory instead of adding to it.
            let outcome = try OnePass(source: source, plan: plan, preset: options.preset, limits: options.limits, extras: options.extras,
                                      titleLanguages: options.titleLanguages, directory: publisher.workDirectory, logger: options.logger, progress: options.progress).run()
            let master = try PackageWriter.writeMaster(directory: publisher.workDirectory, outcome: outcome, muxAudio: plan.muxAudio,
                                                        captions: captionTracks)
            var warnings = source.info.notes
            if outcome.corruptPackets > 0 {
                warnings.append("\(outcome.corruptPackets) corrupt packet\(outcome.corruptPackets == 1 ? "" : "s") skipped or concealed while decoding")
            }
            let downloads = options.extras ? try makeDownloads(plan: plan, outcome: outcome, package: publisher.workDirectory) : []
            try LectureManifest(package: publisher.workDirectory, source: source.info, master: master, thumbnails: outcome.thumbnails, chapters: outcome.chapters,
                                downloads: downloads, warnings: warnings,
                                build: .init(generator: "\(Product.name) \(Product.version)", preset: options.preset.name,
                                             presetSHA256: options.preset.fingerprint, key: options.buildKey))
                .write(to: publisher.workDirectory)
            try publisher.publish()
            return TranscodeResult(output: output, source: source.info, plan: plan, master: master,
                                   thumbnails: outcome.thumbnails, chapters: outcome.chapters, downloads: downloads, corruptPackets: outcome.corruptPackets, warnings: warnings,
                                   elapsed: Date().timeIntervalSince(started))
        } catch {
            // Writers that fail for want of space report it in many ways ("cannot create file", an
            // FFmpeg I/O error inside a rendition); the file system says what it was.
            let full = Publisher.isFull(publisher.workDirectory.deletingLastPathComponent())
            publisher.discard()
            if full || Transcoder.isNoSpace(error) {
                throw CoursePackError(.output, path: publisher.workDirectory.deletingLastPathComponent().path,
                                      "disk full (no space left on device) while writing the package: \(error)")
            }
            throw error
        }
    }

    /// ENOSPC or EDQUOT from FFmpeg, directly or inside a rendition's failure.
    static func isNoSpace(_ error: Error) -> Bool {
        if let e = error as? MediaError { return e.isNoSpace }
        let text = "\(error)"
        return text.contains("No space left on device") || text.contains("Disk quota exceeded")
    }
}

extension Transcoder {
    /// Parsed caption tracks with distinct names ("en", "en-2", "und").
    static func captionTracks(_ inputs: [CaptionInput]) throws -> [CaptionWriter.Track] {
        var tracks: [CaptionWriter.Track] = []
        for input in inputs {
            var t = CaptionWriter.Track(input: input, cues: try CaptionParser.parse(input))
            var n = 2
            while tracks.contains(where: { $0.name == t.name }) {
                t.input.language = "\(input.language ?? "und")-\(n)"
                n += 1
            }
            tracks.append(t)
        }
        return tracks
    }

    /// The preset's download rung with its audio, and the audio-only rendition as M4A.
    static func makeDownloads(plan: LadderPlan, outcome: PassOutcome, package: URL) throws -> [DownloadSummary] {
        guard let audioOnly = plan.audio.first(where: \.audioOnly) else { return [] }
        let rung = plan.download.flatMap { name in plan.video.first { $0.name == name } }
        do {
            let audio = rung.map { $0.audio.isEmpty ? audioOnly.name : $0.audio } ?? audioOnly.name
            // The audio's own folder, or the video rendition's segments when the sound lives only there.
            let ownFolder = !plan.muxAudio || plan.audio.contains { $0.name == audio && $0.audioOnly }
            return try Downloads.write(package: package, video: rung?.name, audio: audio, audioFolder: ownFolder ? audio : rung?.name ?? audio,
                                       muxed: plan.muxAudio)
        } catch let e as MediaError {
            throw CoursePackError(.internal, path: package.path, "making downloads: \(e)")
        }
    }
}

/// What the decode pass hands to the package writer.
struct PassOutcome {
    var video: [(plan: VideoRenditionPlan, stats: BranchStats)]
    var audio: [(plan: AudioRenditionPlan, stats: BranchStats)]
    var thumbnails: ThumbnailSummary?
    var chapters: [Chapter]
    var corruptPackets: Int
}

/// The single decode pass: demux, decode, normalise, fan out references to every branch.
final class OnePass {
    private let source: OpenedSource
    private let limits: Limits
    private let logger: Logger
    private let progress: (@Sendable (TranscodeProgress) -> Void)?
    private let videoBranches: [VideoBranch]
    private let audioBranches: [AudioBranch]
    private let thumbnailBranch: ThumbnailBranch?
    private let chapterBranch: ChapterBranch?
    /// Every video runner, in the order they are finished.
    private let videoRunners: [BranchRunner]
    /// The video runners that take decoded pictures; the others are fed by the branch they scale from.
    private let decodedRunners: [BranchRunner]
    private let audioRunners: [BranchRunner]
    private var corruptPackets = 0
    private var origin: Double?
    private var pendingAudio: [Frame] = []
    private var normaliser: VideoFilter?
    private var normaliserInput: (Int, Int, PixelFormat)?
    private var videoFrames = 0
    private var keyframes: KeyframePlanner
    private var audioFrames = 0

    /// `chaptersOnly`: no renditions, poster or storyboard, only the chapters (`Transcoder.chapters`).
    init(source: OpenedSource, plan: LadderPlan, preset: Preset, limits: Limits, extras: Bool, titleLanguages: String?, directory: URL, logger: Logger,
         progress: (@Sendable (TranscodeProgress) -> Void)?, chaptersOnly: Bool = false) throws {
        var plan = plan
        if chaptersOnly { plan.video = []; plan.audio = [] }
        self.source = source
        self.limits = limits
        self.logger = logger
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
                                             lead: plan.leadSegmentSeconds, x264Tune: preset.x264Tune, x264Params: preset.x264Params,
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
        } catch let e as MediaError {
            throw CoursePackError(e.kind == .io ? .output : .internal, path: directory.path, e.description)
        } catch let e as CoursePackError {
            throw e
        } catch {
            throw CoursePackError(.output, path: directory.path, "\(error)")
        }
        // One timeline for every rendition (`RenditionOutput.timestampOffset`).
        let offset = videoBranches.map(\.reorderDelay).max() ?? 0
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
        videoRunners = branchRunners + extraRunners
        decodedRunners = zip(videoBranches, branchRunners).filter { $0.0.plan.scaledFrom == nil }.map(\.1) + extraRunners
        audioRunners = audioBranches.map { BranchRunner($0) }
    }

    func run() throws -> PassOutcome {
        let info = source.info
        let path = info.path
        let demuxer = source.demuxer
        let videoDecoder: Decoder?
        let audioDecoder: Decoder?
        do {
            videoDecoder = try info.video.map {
                try Decoder(demuxer: demuxer, streamIndex: $0.index, threads: 2, maxPixels: limits.maxPixels)
            }
            audioDecoder = try info.selectedAudio.map { try Decoder(demuxer: demuxer, streamIndex: $0, threads: 1) }
        } catch let e as MediaError {
            throw CoursePackError(.badInput, path: path, e.description)
        }
        let runners = videoRunners + audioRunners
        runners.forEach { $0.start() }
        let started = Date()
        var lastReport = Date.distantPast
        var position = 0.0
        var dataEnd = -Double.infinity

        func failIfBranchFailed() throws {
            if let failed = runners.first(where: { $0.error != nil }), let error = failed.error {
                throw CoursePackError(.internal, path: path, "rendition \(failed.name): \(error)")
            }
        }

        do {
            while let packet = try demuxer.read() {
                let index = packet.streamIndex
                if index == videoDecoder?.streamIndex {
                    try decode(packet, with: videoDecoder!, video: true)
                } else if index == audioDecoder?.streamIndex {
                    try decode(packet, with: audioDecoder!, video: false)
                } else {
                    continue
                }
                if let t = packet.time {
                    if let o = origin { position = max(position, t - o) }
                    dataEnd = max(dataEnd, t + packet.timeBase.seconds(packet.duration))
                }
                let now = Date()
                if let progress, now.timeIntervalSince(lastReport) >= 0.5 {
                    lastReport = now
                    progress(TranscodeProgress(position: position, duration: info.duration, elapsed: now.timeIntervalSince(started)))
                }
                try failIfBranchFailed()
            }
            if let d = videoDecoder { try decode(nil, with: d, video: true) }
            if let d = audioDecoder { try decode(nil, with: d, video: false) }
            if let n = normaliser {
                try n.push(nil)
                while case let .value(f) = try n.pull() { try distributeVideo(f) }
            }
            if origin == nil, !pendingAudio.isEmpty { try startTimeline(at: pendingAudio[0].time ?? 0) }
            try failIfBranchFailed()
            try checkComplete(dataEnd: dataEnd)
        } catch {
            runners.forEach { $0.abortAndWait() }
            if let e = error as? MediaError { throw CoursePackError.input(path, e) }
            throw error
        }
        if info.video != nil && videoFrames == 0 {
            runners.forEach { $0.abortAndWait() }
            throw CoursePackError(.badInput, path: path, "no decodable video frames (\(corruptPackets) corrupt packets)")
        }
        if info.video == nil && audioFrames == 0 {
            runners.forEach { $0.abortAndWait() }
            throw CoursePackError(.badInput, path: path, "no decodable audio frames (\(corruptPackets) corrupt packets)")
        }
        runners.forEach { $0.finishAndWait() }
        logger.debug("keyframes: \(keyframes.placed) placed, \(keyframes.skipped) left out where the picture had not changed")
        try failIfBranchFailed()
        progress?(TranscodeProgress(position: max(position, info.duration), duration: info.duration, elapsed: Date().timeIntervalSince(started)))
        return PassOutcome(video: videoBranches.map { ($0.plan, $0.stats) },
                           audio: audioBranches.map { ($0.plan, $0.stats) },
                           thumbnails: thumbnailBranch?.summary, chapters: chapterBranch?.chapters ?? [],
                           corruptPackets: corruptPackets)
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

    /// A decoder that fails this many times in a row without a frame between is not skipping a bad
    /// packet but stuck; the lecture fails rather than spin.
    static let maxReceiveErrorsInARow = 64

    private func decode(_ packet: Packet?, with decoder: Decoder, video: Bool) throws {
        if let packet, packet.isCorrupt { corruptPackets += 1 }
        do {
            try decoder.send(packet)
        } catch let e as MediaError where e.isDataError {
            corruptPackets += 1
            return
        }
        var errorsInARow = 0
        while true {
            let result: Pull<Frame>
            do {
                result = try decoder.receive()
            } catch let e as MediaError where e.isDataError {
                corruptPackets += 1
                errorsInARow += 1
                if errorsInARow >= Self.maxReceiveErrorsInARow {
                    throw CoursePackError(.badInput, path: source.info.path, "the \(video ? "video" : "audio") decoder keeps failing: \(e)")
                }
                continue
            }
            guard case let .value(frame) = result else { break }
            errorsInARow = 0
            if frame.isDamaged { corruptPackets += 1 }
            if video { try handleVideo(frame) } else { try handleAudio(frame) }
        }
    }

    private func startTimeline(at time: Double) throws {
        origin = time
        let queued = pendingAudio
        pendingAudio = []
        for f in queued { try distributeAudio(f) }
    }

    private func handleVideo(_ frame: Frame) throws {
        guard frame.pts != nil else { return }
        let shape = (frame.width, frame.height, frame.pixelFormat)
        if normaliserInput == nil || normaliserInput! != shape {
            normaliserInput = shape
            if let n = normaliser {
                // The picture changed shape mid-stream: drain the old graph and build a new one.
                try n.push(nil)
                while case let .value(f) = try n.pull() { try distributeVideo(f) }
            }
            normaliser = try makeNormaliser(for: frame)
        }
        if let n = normaliser {
            try n.push(frame)
            while case let .value(f) = try n.pull() { try distributeVideo(f) }
        } else {
            try distributeVideo(frame)
        }
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
        logger.debug("normalising with \(filters.joined(separator: ","))")
        return try VideoFilter(filters.joined(separator: ","), input: frame, threads: 1)
    }

    private func distributeVideo(_ frame: Frame) throws {
        guard let t = frame.time else { return }
        if origin == nil { try startTimeline(at: t) }
        frame.pts = frame.timeBase.timestamp(t - origin!)
        try keyframes.mark(frame, at: t - origin!)
        videoFrames += 1
        try fanOut(frame, to: decodedRunners)
    }

    private func handleAudio(_ frame: Frame) throws {
        guard frame.time != nil else { return }
        if origin == nil {
            if source.info.video == nil || pendingAudio.count > 2000 {
                try startTimeline(at: frame.time!)
            } else {
                pendingAudio.append(frame)
                return
            }
        }
        try distributeAudio(frame)
    }

    private func distributeAudio(_ frame: Frame) throws {
        guard let t = frame.time, let origin else { return }
        frame.pts = frame.timeBase.timestamp(t - origin)
        audioFrames += 1
        try fanOut(frame, to: audioRunners)
    }

    /// Every branch gets its own reference to the same decoded buffers; the last takes the frame itself.
    private func fanOut(_ frame: Frame, to runners: [BranchRunner]) throws {
        for (i, r) in runners.enumerated() {
            let f = i == runners.count - 1 ? frame : frame.reference()
            if !r.put(f) {
                throw CoursePackError(.internal, path: source.info.path, "rendition \(r.name): \(r.error.map { "\($0)" } ?? "stopped")")
            }
        }
    }
}
