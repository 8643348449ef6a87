import Foundation
public import LectureModel
import FFmpeg
public import Logging

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
    /// Captions and a transcript from the speech; nil: no speech stage.
    public var speech: SpeechOptions?
    /// Starts the speech recognizer (a child process the layer above runs); it must load the model
    /// before it returns, so a bad model fails before any decoding.
    public var startSpeech: (@Sendable (SpeechOptions) throws -> any SpeechRecognizer)?

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
            var warnings = source.info.notes
            // The speech recognizer starts (and loads its model) before any decoding.
            let recognizer = try startSpeech(options, hasSound: source.info.selectedAudio != nil, warnings: &warnings)
            // The pass (encoders, scalers, muxers) is released as soon as it has run, so the downloads
            // remux below reuses its memory instead of adding to it.
            let outcome: PassOutcome
            do {
                outcome = try OnePass(source: source, plan: plan, preset: options.preset, limits: options.limits, extras: options.extras,
                                      titleLanguages: options.titleLanguages, directory: publisher.workDirectory, logger: options.logger,
                                      progress: options.progress, speech: recognizer).run()
            } catch {
                recognizer?.cancel()
                throw error
            }
            var tracks = captionTracks
            var transcript: TranscriptSummary?
            if let recognizer, let speech = options.speech {
                let heard = try recognizer.finish()
                let cues = SpeechCues.cues(heard.segments)
                if cues.isEmpty {
                    warnings.append("no speech found: no automatic captions or transcript")
                } else {
                    transcript = try TranscriptWriter.write(heard, model: URL(fileURLWithPath: speech.model).lastPathComponent,
                                                            package: publisher.workDirectory)
                    let language = heard.language ?? "und"
                    // A caption file in the same language wins over the automatic track.
                    if tracks.contains(where: { $0.input.language.map { Self.primary($0) == Self.primary(language) } ?? false }) {
                        warnings.append("automatic \(language) captions not added: a caption file in that language was given")
                    } else {
                        tracks.append(CaptionWriter.Track(input: CaptionInput(path: "speech", language: language), cues: cues, automatic: true))
                    }
                }
            }
            let master = try PackageWriter.writeMaster(directory: publisher.workDirectory, outcome: outcome, muxAudio: plan.muxAudio,
                                                        captions: tracks)
            if outcome.corruptPackets > 0 {
                warnings.append("\(outcome.corruptPackets) corrupt packet\(outcome.corruptPackets == 1 ? "" : "s") skipped or concealed while decoding")
            }
            let downloads = options.extras ? try makeDownloads(plan: plan, outcome: outcome, package: publisher.workDirectory) : []
            try LectureManifest(package: publisher.workDirectory, source: source.info, master: master, thumbnails: outcome.thumbnails, chapters: outcome.chapters,
                                transcript: transcript,
                                downloads: downloads, warnings: warnings,
                                build: .init(generator: "\(Product.name) \(Product.version)", preset: options.preset.name,
                                             presetSHA256: options.preset.fingerprint, key: options.buildKey))
                .write(to: publisher.workDirectory)
            try publisher.publish()
            return TranscodeResult(output: output, source: source.info, plan: plan, master: master,
                                   thumbnails: outcome.thumbnails, chapters: outcome.chapters, downloads: downloads, corruptPackets: outcome.corruptPackets, warnings: warnings,
                                   elapsed: Date().timeIntervalSince(started))
        } catch {
            // A write that met a full disk says so where it failed (`OutputFile`, `CoursePackError.rendition`);
            // a failure elsewhere (creating a folder, FFmpeg's muxer opening a file) is taken for one
            // when the file system has next to nothing left.
            let folder = publisher.workDirectory.deletingLastPathComponent()
            let full = DiskSpace.of(folder)?.isFull ?? false
            publisher.discard()
            if full, (error as? CoursePackError)?.reason.hasPrefix(CoursePackError.diskFullReason) != true {
                throw CoursePackError(.output, path: folder.path, "\(CoursePackError.diskFullReason) while writing the package: \(error)")
            }
            // A file of the hidden work folder is named by where it would have been published.
            if let e = error as? CoursePackError, e.path.hasPrefix(publisher.workDirectory.path) {
                let named = output.count > 1 && output.hasSuffix("/") ? String(output.dropLast()) : output
                throw CoursePackError(e.category, path: named + e.path.dropFirst(publisher.workDirectory.path.count), e.reason)
            }
            throw error
        }
    }
}

extension Transcoder {
    /// The speech recognizer, started, when the run asks for one and the source has sound.
    static func startSpeech(_ options: TranscodeOptions, hasSound: Bool, warnings: inout [String]) throws -> (any SpeechRecognizer)? {
        guard let speech = options.speech else { return nil }
        if let problem = SpeechOptions.modelProblem(speech.model) { throw CoursePackError(.usage, path: speech.model, problem) }
        if let l = speech.language, let problem = SpeechOptions.languageProblem(l) { throw CoursePackError(.usage, path: "--language", problem) }
        guard hasSound else {
            warnings.append("no sound: no automatic captions or transcript")
            return nil
        }
        guard let start = options.startSpeech else {
            throw CoursePackError(.internal, path: speech.model, "no speech recognizer is available in this program")
        }
        return try start(speech)
    }

    /// "en" of "en-US".
    static func primary(_ tag: String) -> String { String(tag.lowercased().split(separator: "-").first ?? "") }

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
        } catch let e as MediaError where e.isNoSpace {
            throw CoursePackError(.output, path: package.path, "\(CoursePackError.diskFullReason) while making downloads")
        } catch let e as MediaError {
            throw CoursePackError(.internal, path: package.path, "making downloads: \(e)")
        }
    }
}
