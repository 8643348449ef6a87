import Course
public import Foundation
import Lecture
public import Logging
public import ServiceLifecycle

/// How a runner takes and runs jobs: inside `coursepack serve`, or as `coursepack worker` on an
/// encoding machine.
public struct RunnerSettings: Sendable {
    /// Lectures run at once.
    public var workers: Int
    /// A running job's lease, renewed every 2 s (every third of a shorter lease).
    public var leaseSeconds: Double
    /// Seconds running jobs get to finish on SIGTERM before they are stopped and queued again.
    public var shutdownGraceSeconds: Double
    /// How often an idle runner looks for work when no notification comes.
    public var pollSeconds: Double
    /// This machine's folder for packages being made; each job gets a subfolder, removed after.
    public var scratch: URL
    /// The worker's name (GET /v1/workers).
    public var name: String

    public init(workers: Int, leaseSeconds: Double, shutdownGraceSeconds: Double, pollSeconds: Double, scratch: URL, name: String) {
        self.workers = workers
        self.leaseSeconds = leaseSeconds
        self.shutdownGraceSeconds = shutdownGraceSeconds
        self.pollSeconds = pollSeconds
        self.scratch = scratch
        self.name = name
    }
}

/// Runs queued jobs, `workers` at a time, each in a child process (LectureWorker) that makes the
/// package in the local scratch folder; the package is then placed in the shared output root inside
/// the store's fenced finish, so a run that lost its lease publishes nothing. Holds a lease on each
/// running job and renews it with the job's progress; stops a job when it is cancelled or its lease
/// is lost. On graceful shutdown it claims nothing more, gives running jobs the grace period, then
/// stops them and queues them again.
public final class JobRunner: Service, @unchecked Sendable {  // mutable state behind `lock`
    let store: any JobStore
    let settings: RunnerSettings
    let executable: String
    let hashes: SourceHashCache
    let metrics: ServerMetrics?
    let logger: Logger
    /// Fills in the spec of a job queued by a version that did not store one (serve only).
    let legacySpec: (@Sendable (Job) -> JobSpec?)?
    /// This process's identity in the store: NAME-PID-RANDOM.
    let record: WorkerRecordBox

    private let lock = NSLock()
    private var shuttingDown = false
    private var graceOver = false
    private var cancels: Set<String> = []
    /// This process's scratch folder (Scratch.claim), once running.
    private var folder: URL?

    /// A runner for `coursepack worker`.
    public convenience init(store: any JobStore, settings: RunnerSettings, executable: String, logger: Logger) {
        self.init(store: store, settings: settings, executable: executable, metrics: nil, logger: logger, legacySpec: nil)
    }

    init(store: any JobStore, settings: RunnerSettings, executable: String, metrics: ServerMetrics?, logger: Logger,
         legacySpec: (@Sendable (Job) -> JobSpec?)?) {
        self.store = store
        self.settings = settings
        self.executable = executable
        self.hashes = SourceHashCache(url: settings.scratch.appendingPathComponent("sources.json"))
        self.metrics = metrics
        self.logger = logger
        self.legacySpec = legacySpec
        let host = ProcessInfo.processInfo.hostName
        record = WorkerRecordBox(WorkerRecord(
            id: "\(settings.name)-\(getpid())-\(UUID().uuidString.prefix(6).lowercased())", name: settings.name, host: host,
            version: Product.version, startedAt: Date(), lastHeartbeat: Date(), running: 0, finished: 0,
            leaseSeconds: settings.leaseSeconds, state: .active))
    }

    public func run() async throws {
        let scratch = try Scratch.claim(root: settings.scratch)
        lock.withLock { folder = scratch }
        let heartbeat = Task { await self.beat() }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<settings.workers { group.addTask { await self.loop() } }
            }
        } onGracefulShutdown: {
            self.lock.withLock { self.shuttingDown = true }
            let grace = self.settings.shutdownGraceSeconds
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: grace)
                self.lock.withLock { self.graceOver = true }
            }
        }
        heartbeat.cancel()
        try? await store.workerBeat(record.value, stopped: true)
        hashes.save()
        try? FileManager.default.removeItem(at: scratch)
    }

    /// Asks this process's run of `id`, if any, to stop (the store has the request too, for other workers).
    func cancelLocally(_ id: String) { _ = lock.withLock { cancels.insert(id) } }

    private var isShuttingDown: Bool { lock.withLock { shuttingDown } }

    /// Records this worker in the store every leaseSeconds/3, while it runs.
    private func beat() async {
        while !Task.isCancelled {
            do {
                try await store.workerBeat(record.value, stopped: false)
            } catch {
                logger.warning("worker heartbeat: \(error)")
            }
            try? await Task.sleep(for: .seconds(max(0.2, min(10, settings.leaseSeconds / 3))))
        }
    }

    private func loop() async {
        var failing = false
        while !isShuttingDown {
            let claim: Claim?
            do {
                claim = try await store.claim(worker: record.value.id, lease: settings.leaseSeconds)
                if failing { logger.notice("job store reachable again") }
                failing = false
            } catch {
                if !failing { logger.error("claiming a job: \(error); retrying") }
                failing = true
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            guard let claim else {
                await store.waitForWork(seconds: settings.pollSeconds)
                continue
            }
            await run(claim)
        }
    }

    private func run(_ claim: Claim) async {
        let job = claim.job
        let started = Date()
        logger.info("job \(job.id) started (attempt \(job.attempts)): \(job.courseId)/\(job.lectureId)")
        record.update { $0.running += 1 }
        defer { record.update { $0.running -= 1; $0.finished += 1 } }
        let folder = (lock.withLock { self.folder } ?? settings.scratch).appendingPathComponent(job.id)
        defer { try? FileManager.default.removeItem(at: folder) }
        let control = RunControl()
        let result = await execute(job, token: claim.token, control: control, folder: folder)

        // Success places the package inside the fenced finish; any other end writes only the row.
        var ending = result.finish
        var owned = false
        for attempt in 1...5 {
            do {
                owned = try await store.finish(job.id, token: claim.token, ending, publish: result.publish)
                break
            } catch {
                logger.error("job \(job.id): recording its end (try \(attempt)): \(error)")
                if attempt == 5 { break }
                try? await Task.sleep(for: .seconds(Double(attempt)))
            }
        }
        if let staged = result.staged { Publication.discard(staged) }
        lock.withLock { _ = cancels.remove(job.id) }
        if !owned {
            ending = .retry(nil, delay: 0, countAttempt: false)
            logger.warning("job \(job.id): this run lost its lease; its result is dropped and nothing was published")
        }
        let seconds = Date().timeIntervalSince(started)
        switch ending {
        case let .succeeded(_, lecture):
            let duration = (try? JSONSerialization.jsonObject(with: lecture) as? [String: Any])?["duration"] as? Double ?? 0
            metrics?.finished("succeeded", seconds: seconds, mediaSeconds: duration)
            logger.info("job \(job.id) succeeded in \(String(format: "%.1f", seconds)) s")
        case let .failed(f):
            metrics?.finished("failed", seconds: seconds, mediaSeconds: nil)
            logger.warning("job \(job.id) failed (\(f.category)): \(f.reason)")
        case let .retry(f, delay, _):
            metrics?.finished("retried", seconds: seconds, mediaSeconds: nil)
            if owned { logger.warning("job \(job.id) queued again in \(Int(delay)) s\(f.map { ": \($0.reason)" } ?? "")") }
        case .cancelled:
            metrics?.finished("cancelled", seconds: seconds, mediaSeconds: nil)
            logger.info("job \(job.id) cancelled")
        }
    }

    struct Result {
        var finish: Finish
        /// Places the package (for a success); runs inside the store's fenced finish.
        var publish: (@Sendable () throws -> Void)?
        /// The package copied beside its destination, to remove if it was not placed.
        var staged: URL?
    }

    /// Makes the job's package in the scratch folder and says how the run ended.
    private func execute(_ job: Job, token: String, control: RunControl, folder: URL) async -> Result {
        func failed(_ category: FailureCategory, _ reason: String) -> Result { Result(finish: .failed(.init(category: category, reason: reason))) }
        guard let spec = job.spec ?? legacySpec?(job) else {
            return failed(.usage, "the job carries no destination and preset (queued by an older version); submit it again")
        }
        let destination = URL(fileURLWithPath: spec.destination)
        let captions = job.captions.map { CaptionInput(path: $0.path, language: $0.language) }

        // The lease is renewed from the start: hashing an hours-long source takes a while too.
        let heartbeat = Task {
            while !Task.isCancelled {
                // Every 2 s (fresh progress in the API), or every third of a shorter lease.
                try? await Task.sleep(for: .seconds(max(0.2, min(2, settings.leaseSeconds / 3))))
                if Task.isCancelled { break }
                do {
                    let state = try await store.heartbeat(job.id, token: token, lease: settings.leaseSeconds, progress: control.progress)
                    if state.cancel { control.stop(.cancel) }
                    if !state.owned { control.stop(.leaseLost) }
                } catch {
                    // The store is out of reach: keep the run going; the fence decides at the end.
                    logger.warning("job \(job.id): lease renewal: \(error)")
                }
                if lock.withLock({ cancels.contains(job.id) }) { control.stop(.cancel) }
                if lock.withLock({ graceOver }) { control.stop(.shutdown) }
            }
        }
        defer { heartbeat.cancel() }

        // Blocking work (hashing, waiting for the worker process) runs on threads of its own, off
        // Swift's cooperative pool, which serves the HTTP requests.
        let hashes = self.hashes
        let prepared: Swift.Result<(URL, String), Job.Failure> = await onOwnThread {
            do {
                try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                let presetFile = folder.appendingPathComponent("preset.json")
                try Data(spec.preset.utf8).write(to: presetFile)
                let preset = try Preset.load(presetFile)
                let key = try BuildKey.make(source: job.source, captions: captions, preset: preset, extras: true, hashes: hashes)
                return .success((presetFile, key))
            } catch let e as CoursePackError {
                return .failure(.init(category: FailureCategory(e.category), reason: e.description))
            } catch {
                return .failure(.init(category: .internal, reason: "\(folder.path): cannot prepare the run: \(error.localizedDescription)"))
            }
        }
        let presetFile: URL, key: String
        switch prepared {
        case let .failure(f): return Result(finish: .failed(f))
        case let .success((p, k)): (presetFile, key) = (p, k)
        }
        // At-least-once delivery: a run that already made this package (before a crash) is not repeated.
        // (Read on a thread of its own: the destination may be on a network file system.)
        let existing: Data? = await onOwnThread {
            guard let made = try? LectureManifest.read(package: destination), made.build?.key == key else { return nil }
            return try? Data(contentsOf: destination.appendingPathComponent("lecture.json"))
        }
        if let existing { return Result(finish: .succeeded(package: destination.path, lecture: existing)) }
        let made = folder.appendingPathComponent("package").appendingPathComponent(job.lectureId)
        var work = LectureWorker.Task(source: job.source, destination: made, presetFile: presetFile, key: key,
                                      cores: max(1, ProcessInfo.processInfo.activeProcessorCount / settings.workers),
                                      displayName: job.upload.map { "upload \($0)" } ?? job.source)
        work.captions = captions
        var limits = WorkerLimits()
        limits.timeout = spec.timeoutSeconds
        limits.stallTimeout = spec.stallTimeoutSeconds
        limits.memoryMB = spec.memoryLimitMB
        let worker = LectureWorker(executable: executable, limits: limits)
        metrics?.workerStarted()
        defer { metrics?.workerEnded() }
        let task = work
        let outcome = await onOwnThread {
            worker.run(task, stop: { control.reason != nil }) { percent, _ in control.progress = percent }
        }

        switch outcome {
        case .ready:
            if control.reason == .leaseLost { return Result(finish: .retry(nil, delay: 0, countAttempt: false)) }
            // Copy (or move, on the same file system) next to the destination before taking the
            // fence, so the fenced step is a rename.
            let staged: Swift.Result<(URL, Data), Job.Failure> = await onOwnThread {
                guard let data = try? Data(contentsOf: made.appendingPathComponent("lecture.json")) else {
                    return .failure(.init(category: .internal, reason: "\(made.path)/lecture.json: cannot read"))
                }
                do { return .success((try Publication.stage(made, beside: destination), data)) } catch {
                    return .failure(SQLiteJobStore.publishFailure(error))
                }
            }
            switch staged {
            case let .failure(f): return Result(finish: .failed(f))
            case let .success((url, data)):
                return Result(finish: .succeeded(package: destination.path, lecture: data),
                              publish: { try Publication.place(url, at: destination) }, staged: url)
            }
        case let .failed(f):
            switch control.reason {
            case .cancel?: return Result(finish: .cancelled)
            case .shutdown?, .leaseLost?: return Result(finish: .retry(nil, delay: 0, countAttempt: false))
            case nil: break
            }
            if f.category.isTransient, job.attempts < spec.maxAttempts {
                let delay = spec.retryBaseSeconds * pow(2, Double(job.attempts - 1))
                return Result(finish: .retry(.init(category: f.category, reason: f.reason), delay: min(delay, 3600), countAttempt: true))
            }
            return failed(f.category, f.reason)
        }
    }
}

/// The worker record, updated by runs and read by the heartbeat.
final class WorkerRecordBox: @unchecked Sendable {  // state behind `lock`
    private let lock = NSLock()
    private var record: WorkerRecord
    init(_ record: WorkerRecord) { self.record = record }
    var value: WorkerRecord { lock.withLock { record } }
    func update(_ change: (inout WorkerRecord) -> Void) { lock.withLock { change(&record) } }
}

/// Why a running job is being stopped, and its progress; shared by the heartbeat and the worker thread.
final class RunControl: @unchecked Sendable {  // state behind `lock`
    enum Reason { case cancel, shutdown, leaseLost }
    private let lock = NSLock()
    private var _reason: Reason?
    private var _progress = 0.0

    var reason: Reason? { lock.withLock { _reason } }
    var progress: Double {
        get { lock.withLock { _progress } }
        set { lock.withLock { _progress = newValue } }
    }

    func stop(_ why: Reason) { lock.withLock { if _reason == nil { _reason = why } } }
}
