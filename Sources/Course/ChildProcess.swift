import Foundation
import Subprocess
import SystemPackage
import LectureModel
import Synchronization

/// Limits a batch puts on each lecture's worker process.
public struct WorkerLimits: Sendable {
    /// Wall-clock seconds a lecture may take; nil for no limit.
    public var timeout: Double? = 4 * 3600
    /// Seconds without a progress event after which the worker counts as hung.
    public var stallTimeout: Double = 300
    /// Resident memory of the worker, megabytes.
    public var memoryMB: Int = 3000
    /// Seconds between SIGTERM and SIGKILL when a worker is stopped.
    public var grace: Double = 5

    public init() {}
}

/// How a worker process ended.
struct ChildOutcome {
    var status: Int32
    /// The signal that ended it, if one did.
    var signal: Int32?
    /// Why the batch stopped it, if it did: a category (timeout, hung, memory, interrupted) and a reason.
    var stopped: (category: FailureCategory, reason: String)?
    /// The last lines it wrote on stderr.
    var stderrTail: [String]
    var peakRSSMB: Int
}

/// Runs one child process (this executable in worker mode) through swift-subprocess, streams its
/// stdout lines to a callback, and enforces the limits: a crash, hang or runaway allocation inside
/// FFmpeg ends that child only. swift-subprocess forks on a thread of its own that lives as long as
/// this process, so the worker's PR_SET_PDEATHSIG (`Signals.dieWithParent`) fires only when this
/// process dies.
enum ChildProcess {
    /// Blocks the calling thread until the child has ended. Callers are threads of their own (a batch
    /// worker, the server's `onOwnThread`), never one of Swift's cooperative threads.
    /// - Parameter input: the child's stdin (the read end of a pipe, closed here once the child has
    ///   it); nil gives it /dev/null.
    static func run(executable: String, arguments: [String], environment: [String: String], limits: WorkerLimits,
                    input: FileDescriptor? = nil,
                    interrupted: @escaping @Sendable () -> Bool, onStart: @escaping (Int32) -> Void,
                    onLine: @escaping (String) -> Void) -> ChildOutcome {
        let callbacks = Callbacks(onStart: onStart, onLine: onLine)
        let ended = Slot<ChildOutcome>()
        Task {
            ended.put(await runAsync(executable: executable, arguments: arguments, environment: environment, limits: limits,
                                     input: input, interrupted: interrupted, callbacks: callbacks))
        }
        return ended.take()
    }

    private static func runAsync(executable: String, arguments: [String], environment: [String: String], limits: WorkerLimits,
                                 input: FileDescriptor?,
                                 interrupted: @escaping @Sendable () -> Bool, callbacks: Callbacks) async -> ChildOutcome {
        var keys: [Environment.Key: String] = [:]
        for (k, v) in workerEnvironment(ProcessInfo.processInfo.environment).merging(environment, uniquingKeysWith: { $1 }) {
            if let key = Environment.Key(rawValue: k) { keys[key] = v }
        }
        let stderrTail = TailBuffer(lines: 20)
        let watch = WatchSlot()
        do {
            // The limits are checked four times a second from the start until the child has been reaped,
            // also after it has closed its output.
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .milliseconds(250))
                        watch.current?.tick()
                    }
                }
                defer { group.cancelAll() }
                let stdin = try input ?? FileDescriptor.open("/dev/null", .readOnly, options: [.closeOnExec])
                return try await Subprocess.run(.path(FilePath(executable)), arguments: Arguments(arguments), environment: .custom(keys),
                                                input: .fileDescriptor(stdin, closeAfterSpawningProcess: true),
                                                output: .sequence, error: .sequence) { execution in
                    let pid = execution.processIdentifier.value
                    callbacks.onStart(pid)
                    let w = Watch(child: ProcessIdentity(pid: pid), limits: limits, interrupted: interrupted)
                    watch.current = w
                    async let errors: Void = {
                        for try await buffer in execution.standardError { buffer.withUnsafeBytes { stderrTail.append(Data($0)) } }
                    }()
                    var pending = Data()
                    for try await buffer in execution.standardOutput {
                        buffer.withUnsafeBytes { pending.append(contentsOf: $0) }
                        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
                            let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
                            pending.removeSubrange(pending.startIndex...nl)
                            w.sawOutput()
                            callbacks.onLine(line)
                        }
                        // A worker's events are short lines; output without a line end is not one.
                        if pending.count > 1 << 20 { pending.removeAll() }
                    }
                    try await errors
                }
            }
            let w = watch.current
            switch result.terminationStatus {
            case let .exited(code):
                return ChildOutcome(status: code, signal: nil, stopped: w?.reason, stderrTail: stderrTail.lines, peakRSSMB: w?.peakMB ?? 0)
            case let .signaled(signal):
                return ChildOutcome(status: signal, signal: signal, stopped: w?.reason, stderrTail: stderrTail.lines, peakRSSMB: w?.peakMB ?? 0)
            }
        } catch {
            return ChildOutcome(status: -1, signal: nil, stopped: (.internal, "cannot run worker process \(executable): \(error)"),
                                stderrTail: stderrTail.lines, peakRSSMB: watch.current?.peakMB ?? 0)
        }
    }

    /// Resident set size of a process in megabytes, from /proc; nil once it is gone.
    static func residentMB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kb / 1024
        }
        return nil
    }
}

/// A process as the kernel started it: its pid and its start time (/proc/PID/stat, field 22). A
/// signal goes to the pid only while that pid still names the same process, so a watchdog tick
/// that comes after the child was reaped never hits a process that was given the recycled pid.
struct ProcessIdentity: Sendable {
    let pid: Int32
    let startTime: UInt64?

    init(pid: Int32) {
        self.pid = pid
        startTime = ProcessIdentity.startTime(of: pid)
    }

    init(pid: Int32, startTime: UInt64?) {
        self.pid = pid
        self.startTime = startTime
    }

    static func startTime(of pid: Int32) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state is field 3, starttime field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Sends `signal` if the pid still names this process; false when it is gone.
    @discardableResult
    func send(_ signal: Int32) -> Bool {
        guard let startTime, ProcessIdentity.startTime(of: pid) == startTime else { return false }
        return kill(pid, signal) == 0
    }
}

/// The limits check, run four times a second beside the reading loop.
private final class Watch: Sendable {
    private struct State {
        var lastOutput = Date()
        var termSent: Date?
        var killed = false
        var stopReason: (category: FailureCategory, reason: String)?
        var peak = 0
    }
    private let child: ProcessIdentity
    private let limits: WorkerLimits
    private let interrupted: @Sendable () -> Bool
    private let started = Date()
    private let state = Mutex(State())

    init(child: ProcessIdentity, limits: WorkerLimits, interrupted: @escaping @Sendable () -> Bool) {
        self.child = child
        self.limits = limits
        self.interrupted = interrupted
    }

    var reason: (category: FailureCategory, reason: String)? { state.withLock { $0.stopReason } }
    var peakMB: Int { state.withLock { $0.peak } }

    func sawOutput() { state.withLock { $0.lastOutput = Date() } }

    func tick() {
        state.withLock { s in
            guard !s.killed else { return }
            let now = Date()
            if let rss = ChildProcess.residentMB(child.pid) {
                s.peak = max(s.peak, rss)
                if rss > limits.memoryMB {
                    stop(&s, now, .memory, "used \(rss) MB of memory, over the limit of \(limits.memoryMB) MB", force: true)
                    return
                }
            }
            if let t = s.termSent {
                if now.timeIntervalSince(t) > limits.grace { child.send(SIGKILL); s.killed = true }
                return
            }
            if let timeout = limits.timeout, now.timeIntervalSince(started) > timeout {
                stop(&s, now, .timeout, "took longer than the per-lecture timeout of \(Int(timeout)) s", force: false)
            } else if now.timeIntervalSince(s.lastOutput) > limits.stallTimeout {
                stop(&s, now, .hung, "made no progress for \(Int(limits.stallTimeout)) s (hung)", force: false)
            } else if interrupted() {
                stop(&s, now, .interrupted, "was stopped: the batch was interrupted", force: false)
            }
        }
    }

    /// SIGTERM first, so the worker removes its temporary folder; SIGKILL after the grace period.
    private func stop(_ s: inout State, _ now: Date, _ category: FailureCategory, _ why: String, force: Bool) {
        if s.stopReason == nil { s.stopReason = (category, why) }
        if force {
            child.send(SIGKILL)
            s.killed = true
        } else {
            child.send(SIGTERM)
            s.termSent = now
        }
    }
}

/// The last few lines of a stream.
private final class TailBuffer: Sendable {
    private let limit: Int
    private let state = Mutex((partial: Data(), kept: [String]()))

    init(lines: Int) { limit = lines }

    func append(_ data: Data) {
        state.withLock { s in
            s.partial.append(data)
            while let nl = s.partial.firstIndex(of: UInt8(ascii: "\n")) {
                s.kept.append(String(decoding: s.partial[s.partial.startIndex..<nl], as: UTF8.self))
                s.partial.removeSubrange(s.partial.startIndex...nl)
            }
            if s.kept.count > limit { s.kept.removeFirst(s.kept.count - limit) }
            if s.partial.count > 4096 { s.partial.removeAll() }
        }
    }

    var lines: [String] {
        state.withLock { s in s.kept + (s.partial.isEmpty ? [] : [String(decoding: s.partial, as: UTF8.self)]) }
    }
}

/// The environment a worker inherits: this process's, without its secrets. A worker parses untrusted
/// media and needs neither the API token nor the webhook secret (nor any other credential).
func workerEnvironment(_ environment: [String: String]) -> [String: String] {
    environment.filter { key, _ in
        let k = key.uppercased()
        return !["COURSEPACK_API_TOKEN", "COURSEPACK_WEBHOOK_SECRET", "COURSEPACK_DATABASE_URL", "DATABASE_URL"].contains(k)
            && !["TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIALS"].contains { k.hasSuffix($0) }
    }
}

/// The caller's callbacks, run only while `ChildProcess.run` waits for them (on the task that reads
/// the child's output, one call at a time).
private struct Callbacks: @unchecked Sendable {
    let onStart: (Int32) -> Void
    let onLine: (String) -> Void
}

/// The child's watch, set once its pid is known; read by the ticking task.
private final class WatchSlot: Sendable {
    private let watch = Mutex<Watch?>(nil)
    var current: Watch? {
        get { watch.withLock { $0 } }
        set { watch.withLock { $0 = newValue } }
    }
}

/// One value handed from a task to the thread that waits for it.
private final class Slot<Value>: @unchecked Sendable {  // state behind `condition`
    private let condition = NSCondition()
    private var value: Value?

    func put(_ v: Value) {
        condition.withLock {
            value = v
            condition.signal()
        }
    }

    func take() -> Value {
        condition.withLock {
            while value == nil { condition.wait() }
            return value!
        }
    }
}
