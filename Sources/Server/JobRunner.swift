import Course
public import Foundation
import LectureModel
public import Logging
public import ServiceLifecycle
import Synchronization

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
        let (shutdown, shutdownStarted) = AsyncStream<Void>.makeStream()
        let grace = settings.shutdownGraceSeconds
        await withGracefulShutdownHandler {
            // The heartbeat and the grace timer live as long as the loops, as tasks of one group.
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.beat() }
                group.addTask {
                    // From the shutdown on, runs get `grace` seconds before they are stopped.
                    for await _ in shutdown {
                        try? await Task.sleep(for: .seconds(grace))
                        if !Task.isCancelled { self.lock.withLock { self.graceOver = true } }
                        return
                    }
                }
                await withTaskGroup(of: Void.self) { loops in
                    for _ in 0..<settings.workers { loops.addTask { await self.loop() } }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.lock.withLock { self.shuttingDown = true }
            shutdownStarted.yield()
            shutdownStarted.finish()
        }
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
                if isStuck {
                    logger.error("a run is stuck outside its worker process; heartbeats stop so that this worker shows as lost")
                } else {
                    try await withDeadline(seconds: Self.storeCallSeconds) { try await self.store.workerBeat(self.record.value, stopped: false) }
                }
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

        // A made package is placed outside the store's transactions: fence (token, lease, cancel,
        // newer jobs of the lecture), one atomic rename, then the end is recorded. A store that is out
        // of reach at any step ends the run here; the job runs again after its lease, and a package
        // already placed is found by its build key.
        var ending = result.finish
        var owned = true
        var replaced: URL?
        var keepStaged = false
        if case .succeeded = ending, let staged = result.staged, let destination = result.destination {
            stepStarted(job.id)
            switch await place(job, token: claim.token, staged: staged, at: destination) {
            case let .placed(old): replaced = old
            case let .ended(other): ending = other
            case .lost: owned = false
            case .unknown: owned = false; keepStaged = true
            }
        }
        if owned { owned = await record(job.id, token: claim.token, ending) }
        stepEnded(job.id)
        // The staged copy (when not placed) and the replaced package go on a thread of their own,
        // not waited for: a package of many files takes a while, and a kill meanwhile leaves a
        // leftover that the next placing of the lecture removes.
        let leftovers = [keepStaged ? nil : result.staged, replaced].compactMap { $0 }
        if !leftovers.isEmpty { Thread.detachNewThread { for f in leftovers { Publication.discard(f) } } }
        lock.withLock { _ = cancels.remove(job.id) }
        if !owned {
            ending = .retry(nil, delay: 0, countAttempt: false)
            logger.warning("job \(job.id): this run lost its lease or its store; its end is not recorded here")
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
        case let .superseded(newer):
            metrics?.finished("superseded", seconds: seconds, mediaSeconds: nil)
            logger.notice("job \(job.id) superseded by \(newer): its package was not placed")
        }
    }

    enum Placing {
        /// Placed; the folder holding the replaced package, if there was one.
        case placed(URL?)
        /// Not placed, and the run ends this way (cancelled, superseded, failed).
        case ended(Finish)
        /// The run no longer holds the job, or the store could not be reached: nothing placed.
        case lost
        /// The rename never returned: whether it happened is unknown.
        case unknown
    }

    /// Seconds the rename into place may take before the run gives up on it.
    static let renameSeconds = 30.0

    /// Seconds a store call may take before the runner gives up on it.
    static let storeCallSeconds = 10.0

    /// The fence, then the rename. A lecture another job is placing right now is waited for.
    private func place(_ job: Job, token: String, staged: URL, at destination: URL) async -> Placing {
        let lease = settings.leaseSeconds
        var storeErrors = 0
        let deadline = Date().addingTimeInterval(max(60, 10 * lease))
        while Date() < deadline {
            let fence: Fence
            do {
                fence = try await withDeadline(seconds: Self.storeCallSeconds) {
                    try await self.store.fence(job.id, token: token, lease: lease, window: lease)
                }
            } catch {
                storeErrors += 1
                logger.error("job \(job.id): checking its lease before placing (try \(storeErrors)): \(error)")
                if storeErrors >= 3 || lock.withLock({ graceOver }) { return .lost }
                try? await Task.sleep(for: .seconds(1))
                continue
            }
            switch fence {
            case .lost: return .lost
            case .cancelRequested: return .ended(.cancelled)
            case let .superseded(newer): return .ended(.superseded(by: newer))
            case .busy:
                if lock.withLock({ graceOver }) { return .lost }
                try? await Task.sleep(for: .milliseconds(500))
            case .owned:
                let placed: Swift.Result<URL?, Job.Failure>
                do {
                    placed = try await onOwnThread(seconds: Self.renameSeconds) {
                        Publishing.testPause("before-place")
                        defer { Publishing.testPause("after-place") }
                        do { return .success(try Publishing.place(staged, at: destination)) } catch {
                            return .failure(Publication.failure(error))
                        }
                    }
                } catch {
                    // The rename did not return (a hung file system): its outcome is unknown, so the
                    // staged folder is left alone (Publication's leftover rule takes it later) and the
                    // job's next run settles it by the build key.
                    logger.error("job \(job.id): placing \(destination.path) did not end in \(Int(Self.renameSeconds)) s")
                    return .unknown
                }
                switch placed {
                case let .success(old): return .placed(old)
                case let .failure(f): return .ended(.failed(f))
                }
            }
        }
        logger.error("job \(job.id): another job of lecture \(job.courseId)/\(job.lectureId) kept placing; queued again")
        return .ended(.retry(nil, delay: 0, countAttempt: false))
    }

    /// Records the run's end; a few tries, each with a deadline. Returns whether the run still owned
    /// the job (false also when the store stayed out of reach: the job's lease then runs out).
    private func record(_ id: String, token: String, _ ending: Finish) async -> Bool {
        for attempt in 1...5 {
            do {
                return try await withDeadline(seconds: Self.storeCallSeconds) { try await self.store.finish(id, token: token, ending) }
            } catch {
                logger.error("job \(id): recording its end (try \(attempt)): \(error)")
                if attempt == 5 || lock.withLock({ graceOver }) { break }
                try? await Task.sleep(for: .seconds(Double(attempt)))
            }
        }
        return false
    }

    /// Steps outside the worker process (placing, recording) mark their start; a step that outlasts
    /// `stuckSeconds` stops this worker's heartbeats, so the store shows it lost rather than active.
    private var steps: [String: Date] = [:]
    private func stepStarted(_ id: String) { lock.withLock { steps[id] = Date() } }
    private func stepEnded(_ id: String) { _ = lock.withLock { steps.removeValue(forKey: id) } }
    private var stuckSeconds: Double {
        #if DEBUG
        // Debug builds (the tests') take COURSEPACK_TEST_STUCK_SECONDS; a release build ignores it.
        if let s = ProcessInfo.processInfo.environment["COURSEPACK_TEST_STUCK_SECONDS"].flatMap(Double.init) { return s }
        #endif
        return 120 + 10 * settings.leaseSeconds
    }
    var isStuck: Bool { lock.withLock { steps.values.contains { Date().timeIntervalSince($0) > stuckSeconds } } }

    struct Result {
        var finish: Finish
        /// Places the package (for a success); runs inside the store's fenced finish.
        /// The package copied beside its destination, to place.
        var staged: URL?
        var destination: URL?
    }

    /// Makes the job's package in the scratch folder and says how the run ended, renewing the lease
    /// from the start (hashing an hours-long source takes a while too) in a child task that ends
    /// with the run.
    private func execute(_ job: Job, token: String, control: RunControl, folder: URL) async -> Result {
        guard let spec = job.spec ?? legacySpec?(job) else {
            return Result(finish: .failed(.init(category: .usage,
                                                reason: "the job carries no destination and preset (queued by an older version); submit it again")))
        }
        return await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.renewLease(job, token: token, control: control) }
            let result = await make(job, spec: spec, control: control, folder: folder)
            group.cancelAll()
            return result
        }
    }

    /// Renews the run's lease and reports its progress until cancelled; stops the run when the job
    /// is cancelled, the lease is lost or the shutdown's grace is over.
    private func renewLease(_ job: Job, token: String, control: RunControl) async {
        while !Task.isCancelled {
            // Every 2 s (fresh progress in the API), or every third of a shorter lease.
            try? await Task.sleep(for: .seconds(max(0.2, min(2, settings.leaseSeconds / 3))))
            if Task.isCancelled { break }
            do {
                // Bounded by the lease (a renewal that takes longer has lost it anyway), so that a
                // connection gone silent cannot hold up the end of the run, which waits for this task.
                let (store, lease, progress) = (store, settings.leaseSeconds, control.progress)
                let state = try await withDeadline(seconds: lease) {
                    try await store.heartbeat(job.id, token: token, lease: lease, progress: progress)
                }
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

    private func make(_ job: Job, spec: JobSpec, control: RunControl, folder: URL) async -> Result {
        func failed(_ category: FailureCategory, _ reason: String) -> Result { Result(finish: .failed(.init(category: category, reason: reason))) }
        let destination = URL(fileURLWithPath: spec.destination)
        let captions = job.captions.map { CaptionInput(path: $0.path, language: $0.language) }

        // Blocking work (hashing, waiting for the worker process) runs on threads of its own, off
        // Swift's cooperative pool, which serves the HTTP requests.
        // The source and captions are checked again here (they may have changed since submission),
        // and opening and hashing them run under the stall timeout.
        let hashes = self.hashes
        let preparing: Swift.Result<(URL, String, FileIdentity), Job.Failure>
        do {
            preparing = try await onOwnThread(seconds: spec.stallTimeoutSeconds) {
                do {
                    let identity = try FileIdentity.of(job.source)
                    for c in captions { _ = try FileIdentity.of(c.path) }
                    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
                    let presetFile = folder.appendingPathComponent("preset.json")
                    try Data(spec.preset.utf8).write(to: presetFile)
                    let preset = try Preset.load(presetFile)
                    let key = try BuildKey.make(source: job.source, captions: captions, preset: preset, extras: true, speech: spec.speech,
                                                hashes: hashes)
                    return .success((presetFile, key, identity))
                } catch let e as CoursePackError {
                    return .failure(.init(category: FailureCategory(e.category), reason: e.description))
                } catch {
                    if Publication.isNoSpace(error) || DiskSpace.of(folder)?.isFull == true {
                        return .failure(Publication.failure(Publication.DiskFull(folder: folder, making: "the run's files")))
                    }
                    return .failure(.init(category: .internal, reason: "\(folder.path): cannot prepare the run: \(error.localizedDescription)"))
                }
            }
        } catch {
            preparing = .failure(.init(category: .hung, reason: "\(job.source): opening and hashing it took over \(Int(spec.stallTimeoutSeconds)) s"))
        }
        let prepared = preparing.map { ($0.0, $0.1) }
        let identity = try? preparing.get().2
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
        var work = LectureWorker.Assignment(source: job.source, destination: made, presetFile: presetFile, key: key,
                                      cores: max(1, ProcessInfo.processInfo.activeProcessorCount / settings.workers),
                                      displayName: job.upload.map { "upload \($0)" } ?? job.source)
        work.captions = captions
        work.speech = spec.speech
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
            // The package is of the file checked at the start only if the path still leads to it.
            if let identity, (try? FileIdentity.of(job.source)) != identity {
                let f = Job.Failure(category: .interrupted, reason: "\(job.source): replaced or changed during the run; nothing was published")
                return Result(finish: job.attempts < spec.maxAttempts ? .retry(f, delay: 0, countAttempt: true) : .failed(f))
            }
            // Copy (or move, on the same file system) next to the destination before taking the
            // fence, so the fenced step is a rename.
            let staged: Swift.Result<(URL, Data), Job.Failure> = await onOwnThread {
                guard let data = try? Data(contentsOf: made.appendingPathComponent("lecture.json")) else {
                    return .failure(.init(category: .internal, reason: "\(made.path)/lecture.json: cannot read"))
                }
                do { return .success((try Publication.stage(made, beside: destination), data)) } catch {
                    return .failure(Publication.failure(error))
                }
            }
            switch staged {
            case let .failure(f): return Result(finish: .failed(f))
            case let .success((url, data)):
                return Result(finish: .succeeded(package: destination.path, lecture: data), staged: url, destination: destination)
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
final class WorkerRecordBox: Sendable {
    private let record: Mutex<WorkerRecord>
    init(_ record: WorkerRecord) { self.record = Mutex(record) }
    var value: WorkerRecord { record.withLock { $0 } }
    func update(_ change: (inout WorkerRecord) -> Void) { record.withLock { change(&$0) } }
}

/// Why a running job is being stopped, and its progress; shared by the heartbeat and the worker thread.
final class RunControl: Sendable {
    enum Reason { case cancel, shutdown, leaseLost }
    private let reasonGiven = Mutex<Reason?>(nil)
    private let progressMade = Mutex(0.0)

    var reason: Reason? { reasonGiven.withLock { $0 } }
    var progress: Double {
        get { progressMade.withLock { $0 } }
        set { progressMade.withLock { $0 = newValue } }
    }

    func stop(_ why: Reason) { reasonGiven.withLock { if $0 == nil { $0 = why } } }
}
