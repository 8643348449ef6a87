import ArgumentParser
import CommandSupport
import Course
import Foundation
import Lecture
import LectureModel
import Logging

@main
struct CoursePack: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coursepack",
        abstract: "Turn lecture videos into HLS courseware for weak networks.",
        discussion: """
        Exit codes: 0 success, 1 validation failures, 64 usage or preset error, 65 bad input,
        70 internal error, 73 output not writable, 75 interrupted or deadline exceeded.
        """,
        subcommands: [Transcode.self, Chapters.self, BatchCommand.self, ServeCommand.self, WorkerCommand.self, Probe.self, Validate.self]
    )
}

/// Runs a command body, turning errors into one line on stderr and the documented exit code.
func runReportingErrors(json: Bool, _ body: () throws -> Void) throws {
    do {
        try body()
    } catch let e as CoursePackError {
        if json { Output.line(TranscodeEvent.error(category: e.category, path: e.path, reason: e.reason).jsonLine(exitCode: \.exitCode)) }
        Output.stderr("coursepack: \(e.description)")
        throw ExitCode(e.category.exitCode)
    }
}

func setUp(verbose: Bool) -> Logger {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = verbose ? .debug : .warning
        return h
    }
    let logger = Logger(label: "coursepack")
    MediaLog.install(maxLevel: verbose ? .warning : nil) { line in
        Output.stderr("ffmpeg: \(line)")
    }
    Signals.install()
    return logger
}

/// `--ocr-languages`, shared by `transcode` and `chapters`.
struct OCRLanguages: ParsableArguments {
    @Option(name: .customLong("ocr-languages"), help: ArgumentHelp("Tesseract languages to read chapter titles in, e.g. chi_sim+eng (default: the preset's, else eng; \"\" reads none).", valueName: "LANGS"))
    var value: String?

    /// The languages given, checked; nil when the option is absent.
    func checked() throws -> String? {
        if let l = value, let problem = Preset.ocrLanguagesProblem(l) { throw CoursePackError(.usage, path: "--ocr-languages", problem) }
        return value
    }
}

/// `--asr-model` and `--language`: captions and a transcript from the speech (docs/SPEECH.md).
struct SpeechArguments: ParsableArguments {
    @Option(name: .customLong("asr-model"), help: ArgumentHelp("A CTranslate2 Whisper model folder: make captions and a transcript from the speech (default: $COURSEPACK_ASR_MODEL; none: no speech stage).", valueName: "DIR"))
    var model: String?

    @Option(help: ArgumentHelp("The lecture's language, an ISO 639-1 code such as en or zh (default: detected from the speech).", valueName: "CODE"))
    var language: String?

    /// The speech stage asked for, checked: the options, else `$COURSEPACK_ASR_MODEL`, else the
    /// preset's fields; nil when no model is named.
    func options(preset: Preset?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> SpeechOptions? {
        if let l = language, let problem = SpeechOptions.languageProblem(l) { throw CoursePackError(.usage, path: "--language", problem) }
        guard let model = model ?? environment["COURSEPACK_ASR_MODEL"].flatMap({ $0.isEmpty ? nil : $0 }) ?? preset?.asrModel else {
            if language != nil { throw CoursePackError(.usage, path: "--language", "names the speech's language, but no --asr-model is given") }
            return nil
        }
        if let problem = SpeechOptions.modelProblem(model) { throw CoursePackError(.usage, path: model, problem) }
        return SpeechOptions(model: model, language: language ?? preset?.language)
    }
}

struct Chapters: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Find a lecture's chapters and read their titles, without transcoding it.")

    @Argument(help: "The lecture video file.")
    var input: String

    @Option(name: .shortAndLong, help: "The folder for the stills and chapters.vtt (in its chapters/ folder).")
    var output: String

    @Option(help: "A preset name from Presets/ or a preset JSON file (for its OCR languages).")
    var preset = "lecture"

    @OptionGroup var ocr: OCRLanguages

    @Flag(help: "Print the chapters as JSON.")
    var json = false

    @OptionGroup var common: Common

    func run() throws {
        let logger = setUp(verbose: common.verbose)
        try runReportingErrors(json: json) {
            var options = TranscodeOptions(preset: try PresetLocator.load(preset))
            options.logger = logger
            options.ocrLanguages = try ocr.checked()
            let chapters = try Transcoder.chapters(input: input, directory: output, options: options)
            if json {
                Output.jsonObject(chapters)
            } else {
                for c in chapters {
                    print(String(format: "%3d  %@ - %@  %@", c.index, vttTimestamp(c.start), vttTimestamp(c.end), c.title))
                }
            }
        }
    }
}

struct Transcode: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Transcode one lecture into an HLS package.")

    @Argument(help: "The lecture video or audio file.")
    var input: String

    @Option(name: .shortAndLong, help: "The package folder to create (replaced only on success).")
    var output: String

    @Option(help: "A preset name from Presets/ or a preset JSON file.")
    var preset = "lecture"

    @Flag(help: "Print JSON-lines progress events and a final summary object on stdout.")
    var json = false

    @Option(name: .customLong("captions"), help: ArgumentHelp("A caption file (.srt or .vtt) with an optional language, e.g. talk.srt:en. Repeatable; sidecars named like the input are found too.", valueName: "FILE[:LANG]"))
    var captions: [String] = []

    @Flag(help: "Make the HLS renditions only: no poster, storyboard, chapters or downloads.")
    var renditionsOnly = false

    @OptionGroup var ocr: OCRLanguages

    @OptionGroup var speech: SpeechArguments

    @Option(help: "Refuse sources longer than this many seconds.")
    var maxDuration: Double = Limits().maxDuration

    @Option(help: "Refuse pictures whose long side exceeds this many pixels.")
    var maxLongSide: Int = Limits().maxLongSide

    @Option(help: "Stop the run after this many wall-clock seconds.")
    var timeout: Double?

    @Option(help: ArgumentHelp("Cores to plan encoder threads for (a batch gives each worker its share).", visibility: .hidden))
    var cores: Int?

    @Option(help: ArgumentHelp("A key recorded in lecture.json's build.key (a batch skips lectures whose key is unchanged).", visibility: .hidden))
    var buildKey: String?

    @OptionGroup var common: Common

    func run() throws {
        let logger = setUp(verbose: common.verbose)
        WorkerMode.enter()
        FaultSwitch.apply(input: input)
        try runReportingErrors(json: json) {
            var options = TranscodeOptions(preset: try PresetLocator.load(preset))
            options.logger = logger
            options.limits.maxDuration = maxDuration
            options.limits.maxLongSide = maxLongSide
            options.limits.timeout = timeout
            options.captions = captions.map(CaptionInput.init(argument:))
            options.extras = !renditionsOnly
            options.ocrLanguages = try ocr.checked()
            if let cores { options.cores = cores }
            options.speech = try speech.options(preset: options.preset)
            let speechThreads = max(1, options.cores)
            options.startSpeech = { try SpeechEngine.start($0, threads: speechThreads) }
            options.buildKey = buildKey
            let json = self.json
            let terminal = isatty(STDERR_FILENO) != 0
            if json || terminal {
                options.progress = { p in
                    if json {
                        Output.line(TranscodeEvent.progress(position: round3(p.position), duration: round3(p.duration),
                                                            percent: round3(p.fraction * 100), speed: round3(p.speed),
                                                            eta: p.eta.map(round3)).jsonLine(exitCode: \.exitCode))
                    }
                    if terminal { Output.progressLine(p) }
                }
            }
            let result = try Transcoder.run(input: input, output: output, options: options)
            if terminal { Output.stderr("") }
            for w in result.warnings { Output.stderr("coursepack: warning: \(input): \(w)") }
            if json {
                Output.jsonObject(result)
            } else {
                print("\(output)/master.m3u8")
                for v in result.master.variants {
                    let size = v.width.map { "\($0)x\(v.height!)" } ?? "audio"
                    print(String(format: "  %-6@ %-10@ peak %5.0f kb/s  average %5.0f kb/s  %@", v.name, size,
                                 Double(v.bandwidth) / 1000, Double(v.averageBandwidth) / 1000, v.codecs))
                }
                print(String(format: "  %.1f s of media in %.1f s (%.2fx real time)", result.source.duration, result.elapsed,
                             result.source.duration / max(result.elapsed, 0.001)))
            }
        }
    }
}

struct Probe: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Describe a source file.")

    @Argument(help: "The media file.")
    var input: String

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var common: Common

    func run() throws {
        _ = setUp(verbose: common.verbose)
        try runReportingErrors(json: json) {
            let info = try Source.open(input).info
            if json {
                Output.jsonObject(info)
            } else {
                print(Output.describe(info))
            }
        }
    }
}

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check an HLS package; exit 1 on any failure.")

    @Argument(help: "The package folder (holding master.m3u8).")
    var package: String

    @Flag(help: "Skip decoding every segment (structure, sizes and keyframes only).")
    var noDecode = false

    @Flag(help: "Print JSON.")
    var json = false

    @OptionGroup var common: Common

    func run() throws {
        _ = setUp(verbose: common.verbose)
        let report = Validator.validate(package: URL(fileURLWithPath: package), decode: !noDecode) { Signals.received != nil }
        if let signal = Signals.received {
            Output.stderr("coursepack: validate \(package): stopped by signal \(signal)")
            throw ExitCode(128 + signal)
        }
        if json {
            Output.jsonObject(report)
        } else {
            for c in report.checks where !c.passed { print("FAIL \(c.name): \(c.detail)") }
            print("\(report.checks.filter(\.passed).count) passed, \(report.failures.count) failed")
        }
        if !report.failures.isEmpty { throw ExitCode(1) }
    }
}

func round3(_ x: Double) -> Double { (x * 1000).rounded() / 1000 }
