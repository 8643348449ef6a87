public import Foundation
public import LectureModel

/// One lecture made by a child process (`coursepack transcode` of the same binary), watched for
/// limits; used by batches and by the job server.
public struct LectureWorker: Sendable {
    public struct Assignment: Sendable {
        public var source: String
        /// The package folder; built beside it and renamed into place by the child.
        public var destination: URL
        public var presetFile: URL
        public var captions: [CaptionInput] = []
        /// Recorded in lecture.json's build.key.
        public var key: String
        public var renditionsOnly = false
        /// Captions and a transcript from the speech; nil: none.
        public var speech: SpeechOptions?
        /// Cores the child plans its encoder threads for.
        public var cores: Int
        /// How the source is named in failure reasons (a path relative to a course folder, say).
        public var displayName: String

        public init(source: String, destination: URL, presetFile: URL, key: String, cores: Int, displayName: String) {
            self.source = source
            self.destination = destination
            self.presetFile = presetFile
            self.key = key
            self.cores = cores
            self.displayName = displayName
        }
    }

    public enum Outcome: Sendable {
        case ready(LectureManifest)
        case failed(CourseManifest.Failure)
    }

    public var executable: String
    public var limits: WorkerLimits
    public var environment: [String: String]

    public init(executable: String, limits: WorkerLimits, environment: [String: String] = [:]) {
        self.executable = executable
        self.limits = limits
        self.environment = environment
    }

    /// Runs the child to its end. `stop` is polled four times a second: true stops the child
    /// (SIGTERM, then SIGKILL after the grace period) and the outcome is an "interrupted" failure.
    public func run(_ task: Assignment, stop: @escaping @Sendable () -> Bool, progress: @escaping (_ percent: Double, _ eta: Double?) -> Void) -> Outcome {
        var request = TranscodeRequest(source: task.source, destination: task.destination.path, presetFile: task.presetFile.path,
                                       buildKey: task.key, cores: task.cores)
        request.captions = task.captions
        request.renditionsOnly = task.renditionsOnly
        request.speech = task.speech
        var env = environment
        env["COURSEPACK_WORKER_PARENT"] = "\(getpid())"
        // The speech stage is what the request says (`--asr-model`), which the build key records, not
        // what this process's environment names.
        env["COURSEPACK_ASR_MODEL"] = ""
        // A crashing worker's last stderr line then names the fault, not the end of a backtrace.
        if ProcessInfo.processInfo.environment["SWIFT_BACKTRACE"] == nil { env["SWIFT_BACKTRACE"] = "enable=no" }

        var reported: CourseManifest.Failure?
        let outcome = ChildProcess.run(executable: executable, arguments: request.arguments, environment: env, limits: limits,
                                       interrupted: stop, onStart: { _ in }) { line in
            switch TranscodeEvent(line: line) {
            case let .progress(_, _, percent, _, eta)?: progress(percent, eta)
            case let .error(category, path, reason)?:
                if CoursePackError(category, path: path, reason).isDiskFull {
                    // Named by the disk the worker writes to, which is what an operator must clear.
                    let detail = reason.replacingOccurrences(of: CoursePackError.diskFullReason, with: "").trimmingCharacters(in: .whitespaces)
                    reported = .init(category: .diskFull, reason: DiskSpace.fullReason(task.destination.deletingLastPathComponent(),
                                                                                       making: "the package", detail.isEmpty ? nil : detail))
                } else {
                    reported = .init(category: FailureCategory(category), reason: reason)
                }
            case nil: break
            }
        }
        // A child killed mid-run leaves its `partial` folder (and, killed while placing on a file
        // system that cannot exchange, the previous package set aside): Publishing's rule removes the
        // one and puts the other back.
        Publishing.removeLeftovers(for: task.destination)

        let name = task.displayName
        if let s = outcome.stopped {
            return .failed(.init(category: s.category, reason: "\(name): worker \(s.reason)"))
        }
        if let sig = outcome.signal {
            let last = outcome.stderrTail.last(where: { !$0.isEmpty }).map { ": \($0)" } ?? ""
            return .failed(.init(category: .crashed, reason: "\(name): worker crashed with signal \(sig) (\(LectureWorker.signalName(sig)))\(last)"))
        }
        if let reported {
            return .failed(.init(category: reported.category, reason: "\(name): \(reported.reason)"))
        }
        if outcome.status != 0 {
            let last = outcome.stderrTail.last(where: { !$0.isEmpty }) ?? "no message"
            return .failed(.init(category: .internal, reason: "\(name): worker exited with status \(outcome.status): \(last)"))
        }
        do {
            let made = try LectureManifest.read(package: task.destination)
            guard made.build?.key == task.key else {
                return .failed(.init(category: .internal, reason: "\(task.destination.path): package does not carry this run's build key"))
            }
            return .ready(made)
        } catch {
            return .failed(.init(category: .internal, reason: "\(task.destination.path)/lecture.json: cannot read: \(error)"))
        }
    }

    static func signalName(_ sig: Int32) -> String {
        switch sig {
        case SIGSEGV: return "SIGSEGV"
        case SIGABRT: return "SIGABRT"
        case SIGKILL: return "SIGKILL"
        case SIGBUS: return "SIGBUS"
        case SIGILL: return "SIGILL"
        case SIGFPE: return "SIGFPE"
        case SIGTRAP: return "SIGTRAP"
        case SIGTERM: return "SIGTERM"
        default: return "signal \(sig)"
        }
    }
}
