import Course
public import Foundation
import Lecture
import Logging
import ServiceLifecycle

/// Runs queued jobs, `workers` at a time, each in a child process (LectureWorker). Holds a lease on
/// each running job and renews it with the job's progress; stops a job when it is cancelled or its
/// lease is lost. On graceful shutdown it claims nothing more, gives running jobs the grace period,
/// then stops them and queues them again.
final class JobRunner: Service, @unchecked Sendable {  // mutable state behind `lock`
    let store: JobStore
    let config: ServerConfig
    let worker: LectureWorker
    let presets: [String: URL]
    let hashes: SourceHashCache
    let metrics: ServerMetrics
    let logger: Logger
    /// This server process's lease owner name.
    let owner = "server-\(UUID().uuidString.prefix(8))-\(getpid())"

    private let lock = NSLock()
    private var shuttingDown = false
    private var graceOver = false
    private var cancels: Set<String> = []

    init(store: JobStore, config: ServerConfig, worker: LectureWorker, presets: [String: URL], hashes: SourceHashCache,
         metrics: ServerMetrics, logger: Logger) {
        self.store = store
        self.config = config
        self.worker = worker
        self.presets = presets
        self.hashes = hashes
        self.metrics = metrics
        self.logger = logger
    }

    func run() async throws {
        // Runs of a server that was killed left their temporary folders beside the packages.
        let root = URL(fileURLWithPath: config.outputRoot)
        for course in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] where !course.hasPrefix(".") {
            LectureWorker.cleanUpDeadRuns(in: root.appendingPathComponent(course))
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<config.workers { group.addTask { await self.loop() } }
            }
        } onGracefulShutdown: {
            self.lock.withLock { self.shuttingDown = true }
            let grace = self.config.shutdownGraceSeconds
            Thread.detachNewThread {
                Thread.sleep(forTimeInterval: grace)
                self.lock.withLock { self.graceOver = true }
            }
        }
        hashes.save()
    }

    /// Asks this server's run of `id`, if any, to stop (the store has the request too, for other servers).
    func cancelLocally(_ id: String) { _ = lock.withLock { cancels.insert(id) } }

    private var isShuttingDown: Bool { lock.withLock { shuttingDown } }

    private func loop() async {
        while !isShuttingDown {
            let job: Job?
            do {
                job = try store.claim(owner: owner, lease: config.leaseSeconds, maxAttempts: config.maxAttempts)
            } catch {
                logger.error("claiming a job: \(error)")
                job = nil
            }
            guard let job else {
                try? await Task.sleep(for: .milliseconds(200))
                continue
            }
            await run(job)
        }
    }

    private func run(_ job: Job) async {
        let started = Date()
        logger.info("job \(job.id) started (attempt \(job.attempts)): \(job.courseId)/\(job.lectureId)")
        let result = await execute(job)
        do {
            try store.finish(job.id, owner: owner, result)
        } catch {
            logger.error("job \(job.id): recording its end: \(error)")
        }
        lock.withLock { _ = cancels.remove(job.id) }
        switch result {
        case let .succeeded(_, lecture):
            let seconds = Date().timeIntervalSince(started)
            let duration = (try? JSONSerialization.jsonObject(with: lecture) as? [String: Any])?["duration"] as? Double ?? 0
            metrics.finished("succeeded", seconds: seconds, mediaSeconds: duration)
            logger.info("job \(job.id) succeeded in \(String(format: "%.1f", seconds)) s")
        case let .failed(f):
            metrics.finished("failed", seconds: Date().timeIntervalSince(started), mediaSeconds: nil)
            logger.warning("job \(job.id) failed (\(f.category)): \(f.reason)")
        case let .retry(f, delay, _):
            metrics.finished("retried", seconds: Date().timeIntervalSince(started), mediaSeconds: nil)
            logger.warning("job \(job.id) queued again in \(Int(delay)) s\(f.map { ": \($0.reason)" } ?? "")")
        case .cancelled:
            metrics.finished("cancelled", seconds: Date().timeIntervalSince(started), mediaSeconds: nil)
            logger.info("job \(job.id) cancelled")
        }
    }

    /// Makes the job's package and says how the run ended.
    private func execute(_ job: Job) async -> JobStore.Finish {
        guard let presetFile = presets[job.preset], let preset = try? Preset.load(presetFile) else {
            return .failed(.init(category: "usage", reason: "preset \(job.preset) is not available on this server"))
        }
        let destination = URL(fileURLWithPath: config.outputRoot).appendingPathComponent(job.courseId).appendingPathComponent(job.lectureId)
        let captions = job.captions.map { CaptionInput(path: $0.path, language: $0.language) }

        // The lease is renewed from the start: hashing an hours-long source takes a while too.
        let control = RunControl()
        let heartbeat = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(max(0.2, min(2, config.leaseSeconds / 3))))
                let state = (try? store.heartbeat(job.id, owner: owner, lease: config.leaseSeconds, progress: control.progress))
                    ?? (owned: true, cancel: false)
                let local = lock.withLock { cancels.contains(job.id) }
                if state.cancel || local { control.stop(.cancel) }
                if !state.owned { control.stop(.leaseLost) }
                if lock.withLock({ graceOver }) { control.stop(.shutdown) }
            }
        }
        defer { heartbeat.cancel() }

        // Blocking work (hashing, the worker process) runs on threads of its own, off Swift's
        // cooperative pool, which serves the HTTP requests. A thread also carries the worker's
        // PR_SET_PDEATHSIG: the child dies if this process does.
        let hashes = self.hashes
        let prepared: Result<String, Job.Failure> = await onOwnThread {
            let key: String
            do {
                key = try BuildKey.make(source: job.source, captions: captions, preset: preset, extras: true, hashes: hashes)
                try FileManager.default.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
            } catch let e as CoursePackError {
                return .failure(.init(category: "\(e.category)", reason: e.description))
            } catch {
                return .failure(.init(category: "output", reason: "\(destination.deletingLastPathComponent().path): cannot create: \(error.localizedDescription)"))
            }
            return .success(key)
        }
        let key: String
        switch prepared {
        case let .failure(f): return .failed(f)
        case let .success(k): key = k
        }
        // At-least-once delivery: a run that already made this package (before a crash) is not repeated.
        if let made = try? LectureManifest.read(package: destination), made.build?.key == key,
           let data = try? Data(contentsOf: destination.appendingPathComponent("lecture.json")) {
            return .succeeded(package: destination.path, lecture: data)
        }
        var work = LectureWorker.Task(source: job.source, destination: destination, presetFile: presetFile, key: key,
                                      cores: max(1, ProcessInfo.processInfo.activeProcessorCount / config.workers),
                                      displayName: job.upload.map { "upload \($0)" } ?? job.source)
        work.captions = captions
        metrics.workerStarted()
        defer { metrics.workerEnded() }
        let worker = self.worker
        let task = work
        let outcome = await onOwnThread {
            worker.run(task, stop: { control.reason != nil }) { percent, _ in control.progress = percent }
        }

        if case .failed = outcome {
            // The course folder was made for this package: leave none behind empty (rmdir removes
            // only an empty folder, so another lecture's package or run keeps it).
            _ = rmdir(destination.deletingLastPathComponent().path)
        }
        switch outcome {
        case .ready:
            guard let data = try? Data(contentsOf: destination.appendingPathComponent("lecture.json")) else {
                return .failed(.init(category: "internal", reason: "\(destination.path)/lecture.json: cannot read"))
            }
            return .succeeded(package: destination.path, lecture: data)
        case let .failed(f):
            switch control.reason {
            case .cancel?: return .cancelled
            case .shutdown?: return .retry(nil, delay: 0, countAttempt: false)
            case .leaseLost?: return .retry(nil, delay: 0, countAttempt: false)  // another server owns it now; this write is ignored
            case nil: break
            }
            let transient: Set<String> = ["crashed", "hung", "timeout", "memory", "internal", "output", "interrupted"]
            if transient.contains(f.category), job.attempts < config.maxAttempts {
                let delay = config.retryBaseSeconds * pow(2, Double(job.attempts - 1))
                return .retry(.init(category: f.category, reason: f.reason), delay: min(delay, 3600), countAttempt: true)
            }
            return .failed(.init(category: f.category, reason: f.reason))
        }
    }
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
