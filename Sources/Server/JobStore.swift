public import Foundation
public import LectureModel

/// A job as the API shows it and the store keeps it.
public struct Job: Encodable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        /// `superseded`: a job submitted later for the same lecture published first, so this one's
        /// package was not placed over it.
        case queued, running, succeeded, failed, cancelled, superseded
        var isFinal: Bool { self != .queued && self != .running }
    }

    public struct Caption: Codable, Sendable, Equatable {
        public var path: String
        public var language: String?
    }

    public struct Failure: Error, Codable, Sendable, Equatable {
        public var category: FailureCategory
        public var reason: String
    }

    public struct Webhook: Codable, Sendable, Equatable {
        /// pending, delivered or failed
        public var state: String
        public var attempts: Int
        public var lastError: String?
    }

    public var id: String
    public var state: State
    public var courseId: String
    public var lectureId: String
    public var title: String?
    /// The resolved source file.
    public var source: String
    /// The upload it came from, if any.
    public var upload: String?
    public var preset: String
    public var captions: [Caption]
    public var callbackUrl: String?
    /// Percent of the source decoded by the current run.
    public var progress: Double
    public var attempts: Int
    public var createdAt: Date
    public var updatedAt: Date
    public var startedAt: Date?
    public var finishedAt: Date?
    /// The last failure: final when state is failed, the reason for a retry when queued again.
    public var error: Failure?
    /// The lecture's package folder, once succeeded.
    public var package: String?
    public var webhook: Webhook?
    /// The package's lecture.json as written, once succeeded; the API inlines it as `lecture`.
    public var lectureJSON: String?
    /// What a worker on any machine needs to run the job; not shown by the API.
    public var spec: JobSpec?

    enum CodingKeys: String, CodingKey {
        case id, state, courseId, lectureId, title, source, upload, preset, captions, callbackUrl, progress, attempts,
             createdAt, updatedAt, startedAt, finishedAt, error, package, webhook
    }
}


/// Everything a worker needs to run a job, stored with it, so that a worker on another machine needs
/// nothing but the database: where the package goes, the preset itself (not its name), and the limits.
public struct JobSpec: Codable, Sendable, Equatable {
    /// The package folder, OUTPUT_ROOT/COURSE_ID/LECTURE_ID, on storage every machine mounts alike.
    public var destination: String
    /// The preset's JSON text.
    public var preset: String
    public var timeoutSeconds: Double?
    public var stallTimeoutSeconds: Double
    public var memoryLimitMB: Int
    /// Tries of a job whose failure is not the input's fault, and the first retry delay.
    public var maxAttempts: Int
    public var retryBaseSeconds: Double
    /// Captions and a transcript from the speech (the server's `asrModel`, the job's `language`).
    public var speech: SpeechOptions?

    public init(destination: String, preset: String, timeoutSeconds: Double?, stallTimeoutSeconds: Double, memoryLimitMB: Int,
                maxAttempts: Int, retryBaseSeconds: Double) {
        self.destination = destination
        self.preset = preset
        self.timeoutSeconds = timeoutSeconds
        self.stallTimeoutSeconds = stallTimeoutSeconds
        self.memoryLimitMB = memoryLimitMB
        self.maxAttempts = maxAttempts
        self.retryBaseSeconds = retryBaseSeconds
    }

    var json: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }
    static func decode(_ text: String?) -> JobSpec? { text.flatMap { try? JSONDecoder().decode(JobSpec.self, from: Data($0.utf8)) } }
}

/// A job claimed by a worker: the job and the lease token that fences this run. Heartbeats and the
/// result name the token; once another worker has claimed the job, they change nothing.
public struct Claim: Sendable {
    public var job: Job
    public var token: String
}

/// A worker process as the store knows it (GET /v1/workers).
public struct WorkerRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case active, lost, stopped }
    /// Unique per process: NAME-PID-RANDOM.
    public var id: String
    public var name: String
    public var host: String
    public var version: String
    public var startedAt: Date
    public var lastHeartbeat: Date
    /// Lectures it runs now, and has ended since it started.
    public var running: Int
    public var finished: Int
    /// A worker is lost when its heartbeat is older than its lease.
    public var leaseSeconds: Double
    public var state: State
}

public enum InsertResult: Sendable { case inserted, queueFull }

/// How a run of a job ended.
public enum Finish: Sendable {
    case succeeded(package: String, lecture: Data)
    case failed(Job.Failure)
    /// Queued again after `delay` seconds; `countAttempt` false for a run stopped by shutdown.
    case retry(Job.Failure?, delay: Double, countAttempt: Bool)
    case cancelled
    /// A newer job for the same lecture has published; this run's package is not placed.
    case superseded(by: String)
}

extension Finish {
    /// What the run table records of this end: its outcome's name and the failure it carries.
    var outcome: (name: String, failure: Job.Failure?) {
        switch self {
        case .succeeded: return ("succeeded", nil)
        case let .failed(f): return ("failed", f)
        case let .retry(f, _, _): return ("retry", f)
        case .cancelled: return ("cancelled", nil)
        case let .superseded(newer): return ("superseded", .init(category: .interrupted, reason: Self.supersededReason(newer)))
        }
    }

    static func supersededReason(_ newer: String) -> String {
        "job \(newer), submitted later for the same lecture, published first; this package was not placed"
    }
}

/// One run of a job (an attempt): which worker ran it, when, and how it ended.
public struct RunRecord: Codable, Sendable, Equatable {
    public var worker: String
    public var started: Date
    /// nil while it runs.
    public var ended: Date?
    /// succeeded, failed, retry, cancelled, superseded or lease expired; nil while it runs.
    public var outcome: String?
    public var failure: Job.Failure?
}

/// What the fence before placing a package says (`JobStore.fence`).
public enum Fence: Sendable, Equatable {
    /// The run holds the job: its lease is renewed and the lecture is marked as being placed by it
    /// for `window` seconds, so no other job of the lecture places meanwhile.
    case owned
    /// The lease ran out or another run holds the job: place nothing.
    case lost
    case cancelRequested
    case superseded(by: String)
    /// Another job of the same lecture is placing its package now: ask again shortly.
    case busy
}

/// The durable job queue. Two implementations: SQLite (one machine: `coursepack serve` alone) and
/// PostgreSQL (API servers and workers on many machines). Both keep the same rules:
/// - a job accepted is a committed row; delivery is at least once;
/// - a running job carries a lease with a token; a job whose lease ran out is claimed again, and the
///   old run's heartbeats and result, which name the old token, change nothing (fencing);
/// - times come from one clock (the database's for PostgreSQL), so machines need not agree.
public protocol JobStore: Sendable {
    /// Adds a queued job unless `queueLimit` jobs are already waiting.
    func insert(_ job: Job, queueLimit: Int) async throws -> InsertResult
    func job(_ id: String, withLecture: Bool) async throws -> Job?
    /// A page of jobs in submission order, optionally of one state, after the job `after`.
    func list(state: Job.State?, after: String?, limit: Int) async throws -> [Job]
    func counts() async throws -> [Job.State: Int]
    /// The jobs in `states` last changed most recently, newest first (the operator's pages).
    func recent(states: [Job.State], limit: Int) async throws -> [Job]

    /// Claims the oldest runnable job: a queued one whose retry time has come, or a running one whose
    /// lease ran out (its worker was lost). A job lost more often than its spec allows fails instead.
    func claim(worker: String, lease: Double) async throws -> Claim?
    /// Renews a run's lease and records its progress: whether the run still owns the job, and
    /// whether a cancel was asked for.
    func heartbeat(_ id: String, token: String, lease: Double, progress: Double) async throws -> (owned: Bool, cancel: Bool)
    /// The step before a run places its package, in one short transaction: checks the run's token and
    /// live lease, a cancel request, and whether a job of the same lecture submitted later has already
    /// succeeded; then renews the lease and marks the lecture as being placed for `window` seconds.
    /// The placing itself happens outside the store (a rename), then `finish` records the end.
    func fence(_ id: String, token: String, lease: Double, window: Double) async throws -> Fence
    /// Ends a run, if it still owns the job (its token and a live lease); clears its placing mark.
    /// Returns whether the run still owned it.
    @discardableResult
    func finish(_ id: String, token: String, _ finish: Finish) async throws -> Bool
    /// Cancels a job: a queued one at once, a running one by asking its worker. Returns the state after.
    func requestCancel(_ id: String) async throws -> Job.State?
    /// Queues a failed, cancelled or superseded job again as if new (attempts from zero, its last
    /// failure kept until the next run ends). Returns the job's state after the call, nil when there
    /// is no such job; a queued, running or succeeded job is left as it is.
    func retry(_ id: String) async throws -> Job.State?
    /// The job's runs, oldest first.
    func runs(of id: String) async throws -> [RunRecord]
    /// The worker in hand of each running job: the worker of its latest run, while that run is open.
    /// One query, for pages that show every running job.
    func holders() async throws -> [String: String]

    /// Takes up to `limit` webhooks that are due, each held for `lease` seconds so that no other
    /// server sends it meanwhile.
    func claimWebhooks(limit: Int, lease: Double) async throws -> [Job]
    func webhookResult(_ id: String, delivered: Bool, error: String?, retryAfter: Double?) async throws

    func addUpload(id: String, path: String, bytes: Int) async throws
    func upload(_ id: String) async throws -> (path: String, bytes: Int)?

    /// Records a worker's heartbeat (running and finished counts); `stopped` when it exits.
    func workerBeat(_ worker: WorkerRecord, stopped: Bool) async throws
    /// Workers seen in the last day.
    func workers() async throws -> [WorkerRecord]
    /// Returns when a job may be waiting: at once after a submission (PostgreSQL's LISTEN/NOTIFY),
    /// else after `seconds` (polling, which also covers a lost notification).
    func waitForWork(seconds: Double) async
}

extension JobStore {
    func job(_ id: String) async throws -> Job? { try await job(id, withLecture: true) }
}

/// SQL both stores share, written once; each dialect's own SQL stays in its store.
enum StoreSQL {
    /// A job that has just ended owes its webhook when it has a callback: due at `now` (a bound value,
    /// a literal, or PostgreSQL's `cp_now()`).
    static func webhookDue(now: String) -> String {
        "webhook_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, webhook_next = \(now)"
    }

    /// A job queued again by `retry`: a new job's columns, but its last failure kept.
    static let requeued = """
        state = 'queued', attempts = 0, progress = 0, cancel_requested = false, finished = NULL, started = NULL, package = NULL,
        lecture = NULL, lease_owner = NULL, lease_token = NULL, lease_expires = NULL, placing_until = NULL,
        webhook_state = NULL, webhook_attempts = 0, webhook_next = NULL, webhook_error = NULL
        """

    /// (job_id, worker) of every running job whose latest run (by start, then token, as `runs(of:)`
    /// orders them) has not ended.
    static let holders = """
        SELECT r.job_id, r.worker FROM run r JOIN job j ON j.id = r.job_id
        WHERE j.state = 'running' AND r.ended IS NULL AND NOT EXISTS (
            SELECT 1 FROM run l WHERE l.job_id = r.job_id AND (l.started > r.started OR (l.started = r.started AND l.token > r.token)))
        """

    /// The states a job row may hold: `Job.State`, the one list. Both schemas refuse any other
    /// (PostgreSQL with a CHECK constraint, SQLite with triggers, since it cannot add a CHECK to a
    /// table it has).
    static var knownState: String {
        "state IN (" + Job.State.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
    }
}
