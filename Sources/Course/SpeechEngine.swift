public import Foundation
public import LectureModel
import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// The speech recognizer: faster-whisper in a child process (`PYTHON -m coursepack_asr`, asr/ in the
/// repository, installed by `make asr-deps`), run through `ChildProcess` under limits of its own, as
/// the lecture workers are. The sound goes to its stdin through a pipe; its timed segments come back
/// as JSON lines (the protocol is described in asr/coursepack_asr.py).
public final class SpeechEngine: SpeechRecognizer, @unchecked Sendable {  // mutable state behind `lock`
    /// The engine's interpreter: `$COURSEPACK_ASR_PYTHON`, else `.venv-asr/bin/python` in the first
    /// folder above this executable that has one (the repository's, for a build in `.build/`).
    public static func python(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let p = environment["COURSEPACK_ASR_PYTHON"], !p.isEmpty { return p }
        let exe = Bundle.main.executablePath ?? CommandLine.arguments[0]
        var folder = URL(fileURLWithPath: exe).resolvingSymlinksInPath().deletingLastPathComponent()
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent(".venv-asr/bin/python")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate.path }
            folder.deleteLastPathComponent()
        }
        return nil
    }

    /// Seconds the engine may take to load its model.
    static let loadSeconds = 120.0

    private let options: SpeechOptions
    private let lock = NSLock()
    private var writeEnd: Int32
    private var ready = false
    private var failure: String?
    private var language: (code: String?, detected: Bool, probability: Double?)?
    private var segments: [SpeechSegment] = []
    private var finished: (audioSeconds: Double, language: String?)?
    private var outcome: ChildOutcome?
    private var cancelled = false
    private let readySignal = DispatchSemaphore(value: 0)
    /// Left when the engine process has ended; waited on by any number of callers.
    private let running = DispatchGroup()

    /// Starts the engine and waits until it has loaded the model. A model that does not load is a
    /// usage error naming the folder.
    public static func start(_ options: SpeechOptions, python: String? = nil, threads: Int, limits: WorkerLimits = WorkerLimits()) throws -> SpeechEngine {
        guard let python = python ?? Self.python() else {
            throw CoursePackError(.usage, path: options.model,
                                  "no speech engine: run `make asr-deps`, or set COURSEPACK_ASR_PYTHON to a Python that has faster-whisper")
        }
        // A write to an engine that has died must fail with EPIPE, not end this process.
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0, fcntl(fds[0], F_SETFD, FD_CLOEXEC) == 0, fcntl(fds[1], F_SETFD, FD_CLOEXEC) == 0 else {
            throw CoursePackError(.internal, path: options.model, "cannot make a pipe for the speech engine: \(String(cString: strerror(errno)))")
        }
        let engine = SpeechEngine(options: options, writeEnd: fds[1])
        engine.running.enter()
        var arguments = ["-m", "coursepack_asr", "--model", options.model, "--threads", "\(max(1, threads))"]
        if let l = options.language { arguments += ["--language", l] }
        let readEnd = FileDescriptor(rawValue: fds[0])
        let command = arguments
        Thread.detachNewThread {
            let outcome = ChildProcess.run(executable: python, arguments: command, environment: ["PYTHONUNBUFFERED": "1"], limits: limits,
                                           input: readEnd, interrupted: { engine.isCancelled }, onStart: { _ in },
                                           onLine: { engine.handle($0) })
            engine.ended(outcome)
        }
        _ = engine.readySignal.wait(timeout: .now() + loadSeconds)
        let (isReady, failure) = engine.lock.withLock { (engine.ready, engine.failure) }
        if !isReady {
            engine.cancel()
            _ = engine.running.wait(timeout: .now() + 10)
            let why = failure ?? engine.endReason() ?? "did not load the model in \(Int(loadSeconds)) s"
            throw CoursePackError(.usage, path: options.model, "the speech engine cannot use this model: \(why)")
        }
        return engine
    }

    private init(options: SpeechOptions, writeEnd: Int32) {
        self.options = options
        self.writeEnd = writeEnd
    }

    deinit { if writeEnd >= 0 { close(writeEnd) } }

    private var isCancelled: Bool { lock.withLock { cancelled } }

    private func handle(_ line: String) {
        guard let data = line.data(using: .utf8),
              let event = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let kind = event["event"] as? String else { return }
        lock.withLock {
            switch kind {
            case "ready":
                ready = true
                readySignal.signal()
            case "language":
                language = (event["language"] as? String, event["detected"] as? Bool ?? false, event["probability"] as? Double)
            case "segment":
                guard let start = event["start"] as? Double, let end = event["end"] as? Double, let text = event["text"] as? String else { return }
                let words = (event["words"] as? [[Any]] ?? []).compactMap { w -> SpeechSegment.Word? in
                    guard w.count == 3, let s = w[0] as? Double, let e = w[1] as? Double, let t = w[2] as? String else { return nil }
                    return .init(start: s, end: e, text: t)
                }
                segments.append(SpeechSegment(start: start, end: end, text: text, words: words))
            case "done":
                finished = (event["audioSeconds"] as? Double ?? 0, event["language"] as? String)
            case "error":
                failure = failure ?? (event["reason"] as? String ?? "failed")
                readySignal.signal()
            default:
                break
            }
        }
    }

    private func ended(_ outcome: ChildOutcome) {
        lock.withLock { self.outcome = outcome }
        readySignal.signal()
        running.leave()
    }

    /// Why the engine process ended early, from its outcome, if it has ended.
    private func endReason() -> String? {
        lock.withLock {
            guard let o = outcome else { return nil }
            if let s = o.stopped { return s.reason }
            let last = o.stderrTail.last(where: { !$0.trimmingCharacters(in: .whitespaces).isEmpty }).map { ": \($0)" } ?? ""
            if let sig = o.signal { return "the engine died of signal \(sig)\(last)" }
            return o.status == 0 ? nil : "the engine exited with status \(o.status)\(last)"
        }
    }

    public func write(_ pcm: Data) throws {
        try pcm.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = Glibc.write(writeEnd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0, errno == EINTR { continue }
                guard n > 0 else {
                    _ = running.wait(timeout: .now() + 5)
                    let why = lock.withLock { failure } ?? endReason() ?? "it stopped reading"
                    throw CoursePackError(.internal, path: options.model, "speech recognition failed: \(why)")
                }
                done += n
            }
        }
    }

    public func finish() throws -> SpeechResult {
        closeInput()
        running.wait()
        let (failure, finished, language, segments) = lock.withLock { (self.failure, self.finished, self.language, self.segments) }
        if let failure { throw CoursePackError(.internal, path: options.model, "speech recognition failed: \(failure)") }
        if let why = endReason() { throw CoursePackError(.internal, path: options.model, "speech recognition failed: \(why)") }
        guard let finished else { throw CoursePackError(.internal, path: options.model, "speech recognition ended without its result") }
        return SpeechResult(language: language?.code ?? finished.language ?? options.language, detected: language?.detected ?? false,
                            probability: language?.probability, segments: segments, audioSeconds: finished.audioSeconds)
    }

    public func cancel() {
        lock.withLock { cancelled = true }
        closeInput()
    }

    private func closeInput() {
        lock.withLock {
            if writeEnd >= 0 { close(writeEnd) }
            writeEnd = -1
        }
    }
}
