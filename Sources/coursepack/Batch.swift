import ArgumentParser
import CommandSupport
import Course
import Foundation
import Lecture
import LectureModel

struct BatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Package a course folder: every lecture, a manifest.json and an index.html.",
        discussion: """
        Lectures come from COURSE_DIR/course.json, or are the folder's media files in natural order
        (docs/COURSES.md). Each lecture runs in its own worker process; a lecture that fails is listed
        with its reason and the others finish. Lectures whose source, captions and preset are unchanged
        are skipped. Exit 0 when every lecture is ready, 1 when some failed, 75 when interrupted.
        """)

    @Argument(help: "The course folder.")
    var course: String

    @Option(name: .shortAndLong, help: "The course package folder (created or updated in place).")
    var output: String

    @Option(help: "Lectures encoded at once.")
    var workers = BatchOptions.defaultWorkers

    @Option(help: "A preset name from Presets/ or a preset JSON file (default: course.json's, else lecture).")
    var preset: String?

    @Flag(help: "Print JSON-lines events on stdout instead of the progress display.")
    var json = false

    @Flag(help: "Make the HLS renditions only: no poster, storyboard, chapters or downloads.")
    var renditionsOnly = false

    @Option(help: "Stop a lecture after this many wall-clock seconds (0: no limit).")
    var timeout: Double = WorkerLimits().timeout ?? 0

    @Option(help: "Stop a lecture whose worker reports no progress for this many seconds.")
    var stallTimeout: Double = WorkerLimits().stallTimeout

    @Option(help: "Stop a lecture whose worker uses more than this many megabytes of memory.")
    var memoryLimit: Int = WorkerLimits().memoryMB

    @OptionGroup var speech: SpeechArguments

    @OptionGroup var common: Common

    func validate() throws {
        guard workers >= 1, workers <= 64 else { throw ValidationError("--workers must be between 1 and 64") }
        guard memoryLimit >= 64 else { throw ValidationError("--memory-limit must be at least 64 (MB)") }
        guard stallTimeout > 0, timeout >= 0 else { throw ValidationError("--stall-timeout must be positive, --timeout not negative") }
    }

    func run() throws {
        _ = setUp(verbose: common.verbose)
        try runReportingErrors(json: json) {
            guard let executable = Executable.path else {
                throw CoursePackError(.internal, path: CommandLine.arguments[0], "cannot find this program's own file to start workers")
            }
            var options = BatchOptions(executable: executable, locatePreset: { try PresetLocator.url($0) })
            options.workers = workers
            options.preset = preset
            options.renditionsOnly = renditionsOnly
            options.limits.timeout = timeout > 0 ? timeout : nil
            options.limits.stallTimeout = stallTimeout
            options.limits.memoryMB = memoryLimit
            // The model for every lecture; each lecture's language comes from course.json, else --language.
            options.speech = try speech.options(preset: nil)
            let display: any BatchDisplay = json ? JSONBatchDisplay()
                : isatty(STDERR_FILENO) != 0 ? LiveBatchDisplay() as any BatchDisplay : PlainBatchDisplay()
            let summary = try Batch(courseDirectory: course, output: output, options: options) { display.show($0) }.run()
            display.close()
            if summary.failed > 0 { throw ExitCode(1) }
        }
    }
}

/// A transcode started by a batch: it dies with its parent, so a batch killed with SIGKILL leaves
/// no worker writing into the course package.
enum WorkerMode {
    static func enter() {
        guard let value = ProcessInfo.processInfo.environment["COURSEPACK_WORKER_PARENT"], let parent = Int32(value) else { return }
        if !Signals.dieWithParent(parent) { exit(75) }
    }
}

/// Faults for tests of the worker pool, set only through the environment (README, "Testing"):
/// COURSEPACK_TEST_FAULT=KIND:NAME[,KIND:NAME...] makes a transcode of an input whose file name
/// contains NAME crash with SIGSEGV (crash), hang without progress and ignore SIGTERM (hang), or
/// allocate memory without end (memory). Compiled into debug builds only (the tests'); a release
/// build ignores the variable.
enum FaultSwitch {
    #if DEBUG
    static func apply(input: String) {
        guard let spec = ProcessInfo.processInfo.environment["COURSEPACK_TEST_FAULT"] else { return }
        let file = URL(fileURLWithPath: input).lastPathComponent
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, !parts[1].isEmpty, file.contains(parts[1]) else { continue }
            switch parts[0] {
            case "crash":
                raise(SIGSEGV)
            case "hang":
                signal(SIGTERM, SIG_IGN)
                while true { sleep(1) }
            case "memory":
                var blocks: [UnsafeMutableRawPointer] = []
                while true {
                    let size = 64 << 20
                    let p = malloc(size)!
                    memset(p, 1, size)
                    blocks.append(p)
                    usleep(50_000)
                }
            default:
                continue
            }
        }
    }
    #else
    static func apply(input: String) {}
    #endif
}

/// How batch events reach a person or a program.
protocol BatchDisplay: Sendable {
    func show(_ event: BatchEvent)
    func close()
}

/// JSON lines on stdout, one per event.
struct JSONBatchDisplay: BatchDisplay {
    func show(_ event: BatchEvent) {
        switch event {
        case let .started(course, lectures, toRun, workers):
            Output.jsonLine(["event": "batch-started", "course": course, "lectures": lectures, "toRun": toRun, "workers": workers])
        case let .skipped(id, title):
            Output.jsonLine(["event": "lecture-skipped", "id": id, "title": title])
        case let .lectureStarted(id, title, worker):
            Output.jsonLine(["event": "lecture-started", "id": id, "title": title, "worker": worker])
        case let .progress(id, worker, percent, eta):
            Output.jsonLine(["event": "progress", "id": id, "worker": worker, "percent": percent, "eta": eta ?? -1])
        case let .finished(id, worker, seconds, duration, bytes):
            Output.jsonLine(["event": "lecture-finished", "id": id, "worker": worker, "seconds": round3(seconds),
                             "duration": duration, "bytes": bytes])
        case let .failed(id, worker, category, reason):
            Output.jsonLine(["event": "lecture-failed", "id": id, "worker": worker ?? 0, "category": category.rawValue, "reason": reason])
        case let .stopped(id, worker):
            Output.jsonLine(["event": "lecture-stopped", "id": id, "worker": worker])
        case let .warning(message):
            Output.jsonLine(["event": "warning", "message": message])
        case let .batchFinished(s):
            Output.jsonLine(["event": "batch-finished", "lectures": s.lectures, "ran": s.ran, "skipped": s.skipped, "ready": s.ready,
                             "failed": s.failed, "pending": s.pending, "seconds": round3(s.seconds), "manifest": s.manifest,
                             "report": s.report])
        }
    }

    func close() {}
}

/// One line per lecture outcome on stderr, for logs.
struct PlainBatchDisplay: BatchDisplay {
    func show(_ event: BatchEvent) {
        if let line = BatchText.line(event) { Output.stderr(line) }
    }

    func close() {}
}

enum BatchText {
    static func line(_ event: BatchEvent) -> String? {
        switch event {
        case let .started(course, lectures, toRun, workers):
            return "coursepack: \(course): \(lectures) lectures, \(toRun) to make, \(workers) worker\(workers == 1 ? "" : "s")"
        case let .skipped(id, _): return "  skipped   \(id) (unchanged)"
        case let .lectureStarted(id, _, worker): return "  started   \(id) (worker \(worker))"
        case .progress: return nil
        case let .finished(id, _, seconds, duration, bytes):
            return String(format: "  ready     %@: %.0f s of media in %.1f s, %.1f MB", id, duration, seconds, Double(bytes) / 1e6)
        case let .failed(id, _, category, reason): return "  FAILED    \(id) (\(category)): \(reason)"
        case let .stopped(id, _): return "  stopped   \(id) (batch interrupted; pending)"
        case let .warning(message): return "coursepack: warning: \(message)"
        case let .batchFinished(s):
            return String(format: "coursepack: %d ready, %d failed, %d skipped, %d pending in %.1f s; %@",
                          s.ready, s.failed, s.skipped, s.pending, s.seconds, s.report)
        }
    }
}

/// On a terminal: outcome lines scrolling above an overall progress bar and a line per worker.
final class LiveBatchDisplay: BatchDisplay, @unchecked Sendable {  // state behind `lock`
    private let lock = NSLock()
    private var total = 0
    private var done = 0
    private var workers: [Int: (id: String, percent: Double, eta: Double?)] = [:]
    private var workerCount = 0
    private var drawn = 0
    private var lastDraw = Date.distantPast
    private let started = Date()

    func show(_ event: BatchEvent) {
        lock.withLock {
            switch event {
            case let .started(_, _, toRun, count):
                total = toRun
                workerCount = count
            case let .lectureStarted(id, _, worker):
                workers[worker] = (id, 0, nil)
            case let .progress(id, worker, percent, eta):
                workers[worker] = (id, percent, eta)
                if Date().timeIntervalSince(lastDraw) < 0.2 { return }
            case let .finished(_, worker, _, _, _):
                done += 1
                workers[worker] = nil
            case let .failed(_, worker, _, _):
                if let worker { done += 1; workers[worker] = nil }
            case let .stopped(_, worker):
                workers[worker] = nil
            default:
                break
            }
            var out = clear()
            if let line = BatchText.line(event) { out += line + "\n" }
            if case .batchFinished = event {} else { out += block() }
            FileHandle.standardError.write(Data(out.utf8))
            lastDraw = Date()
        }
    }

    func close() {
        lock.withLock { FileHandle.standardError.write(Data(clear().utf8)) }
    }

    private func clear() -> String {
        defer { drawn = 0 }
        return drawn == 0 ? "" : "\u{1B}[\(drawn)A\u{1B}[J"
    }

    private func block() -> String {
        guard total > 0 else { return "" }
        let running = workers.values.reduce(0) { $0 + $1.percent / 100 }
        let fraction = min(1, (Double(done) + running) / Double(total))
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Date().timeIntervalSince(started)
        let eta = fraction > 0.01 ? clock(elapsed / fraction * (1 - fraction)) : "--:--"
        var lines = [String(format: "[%@%@] %3.0f%%  %d/%d lectures  ETA %@", String(repeating: "#", count: filled),
                            String(repeating: ".", count: width - filled), fraction * 100, done, total, eta)]
        for w in 1...max(1, workerCount) {
            if let job = workers[w] {
                lines.append(String(format: "  worker %d  %-32@ %5.1f%%  ETA %@", w, String(job.id.prefix(32)), job.percent,
                                    job.eta.map(clock) ?? "--:--"))
            } else {
                lines.append("  worker \(w)  idle")
            }
        }
        drawn = lines.count
        return lines.joined(separator: "\n") + "\n"
    }

    private func clock(_ s: Double) -> String {
        let t = Int(s)
        return t >= 3600 ? String(format: "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60) : String(format: "%d:%02d", t / 60, t % 60)
    }
}
