public import Foundation
import GRDB

/// A job as the API shows it and the store keeps it.
public struct Job: Encodable, Sendable, Equatable {
    public enum State: String, Codable, Sendable, CaseIterable {
        case queued, running, succeeded, failed, cancelled
        var isFinal: Bool { self == .succeeded || self == .failed || self == .cancelled }
    }

    public struct Caption: Codable, Sendable, Equatable {
        public var path: String
        public var language: String?
    }

    public struct Failure: Error, Codable, Sendable, Equatable {
        public var category: String
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

    enum CodingKeys: String, CodingKey {
        case id, state, courseId, lectureId, title, source, upload, preset, captions, callbackUrl, progress, attempts,
             createdAt, updatedAt, startedAt, finishedAt, error, package, webhook
    }
}

/// The durable job queue in SQLite (WAL, synchronous=FULL): a job accepted is a committed row.
/// Running jobs hold a lease that their server renews; a job whose lease ran out (its server died)
/// is claimed again, so delivery is at least once.
public final class JobStore: Sendable {
    let db: DatabaseQueue

    public init(path: String) throws {
        var config = Configuration()
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        config.busyMode = .timeout(10)
        db = try DatabaseQueue(path: path, configuration: config)
        try db.writeWithoutTransaction { db in _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL") }
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE job (
                  id TEXT PRIMARY KEY,
                  state TEXT NOT NULL,
                  course_id TEXT NOT NULL,
                  lecture_id TEXT NOT NULL,
                  title TEXT,
                  source TEXT NOT NULL,
                  upload TEXT,
                  preset TEXT NOT NULL,
                  captions TEXT NOT NULL,
                  callback_url TEXT,
                  progress REAL NOT NULL DEFAULT 0,
                  attempts INTEGER NOT NULL DEFAULT 0,
                  not_before REAL NOT NULL,
                  lease_owner TEXT,
                  lease_expires REAL,
                  cancel_requested INTEGER NOT NULL DEFAULT 0,
                  error_category TEXT,
                  error_reason TEXT,
                  package TEXT,
                  lecture TEXT,
                  created REAL NOT NULL,
                  updated REAL NOT NULL,
                  started REAL,
                  finished REAL,
                  webhook_state TEXT,
                  webhook_attempts INTEGER NOT NULL DEFAULT 0,
                  webhook_next REAL,
                  webhook_error TEXT
                );
                CREATE INDEX job_state_created ON job(state, created);
                CREATE INDEX job_webhook ON job(webhook_state, webhook_next);
                CREATE TABLE upload (id TEXT PRIMARY KEY, path TEXT NOT NULL, bytes INTEGER NOT NULL, created REAL NOT NULL);
                """)
        }
        try migrator.migrate(db)
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    // MARK: submitting and reading

    public enum InsertResult: Sendable { case inserted, queueFull }

    /// Adds a queued job unless `queueLimit` jobs are already waiting.
    public func insert(_ job: Job, queueLimit: Int) throws -> InsertResult {
        try db.write { db in
            let waiting = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'queued'") ?? 0
            guard waiting < queueLimit else { return .queueFull }
            let captions = String(decoding: try JSONEncoder().encode(job.captions), as: UTF8.self)
            try db.execute(sql: """
                INSERT INTO job (id, state, course_id, lecture_id, title, source, upload, preset, captions, callback_url,
                                 not_before, created, updated)
                VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [job.id, job.courseId, job.lectureId, job.title, job.source, job.upload, job.preset, captions,
                                 job.callbackUrl, job.createdAt.timeIntervalSince1970, job.createdAt.timeIntervalSince1970,
                                 job.createdAt.timeIntervalSince1970])
            return .inserted
        }
    }

    public func job(_ id: String, withLecture: Bool = true) throws -> Job? {
        try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map { JobStore.job($0, withLecture: withLecture) } }
    }

    /// A page of jobs in submission order, optionally of one state, after the job `after`.
    public func list(state: Job.State?, after: String?, limit: Int) throws -> [Job] {
        try db.read { db in
            var sql = "SELECT * FROM job WHERE 1"
            var args: [(any DatabaseValueConvertible)?] = []
            if let state { sql += " AND state = ?"; args.append(state.rawValue) }
            if let after, let row = try Row.fetchOne(db, sql: "SELECT created FROM job WHERE id = ?", arguments: [after]) {
                let created: Double = row["created"]
                sql += " AND (created > ? OR (created = ? AND id > ?))"
                args += [created, created, after]
            }
            sql += " ORDER BY created, id LIMIT ?"
            args.append(limit)
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { JobStore.job($0, withLecture: false) }
        }
    }

    public func counts() throws -> [Job.State: Int] {
        try db.read { db in
            var out = Dictionary(uniqueKeysWithValues: Job.State.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let s = Job.State(rawValue: row["state"]) { out[s] = row["n"] }
            }
            return out
        }
    }

    // MARK: running

    /// Claims the oldest runnable job for `owner`: a queued one whose retry time has come, or a running
    /// one whose lease ran out. Jobs whose lease ran out once too often fail instead.
    public func claim(owner: String, lease: Double, maxAttempts: Int) throws -> Job? {
        try db.write { db in
            let now = JobStore.now()
            try db.execute(sql: """
                UPDATE job SET state = 'failed', finished = ?, updated = ?, lease_owner = NULL,
                  error_category = 'internal',
                  error_reason = 'its worker was lost ' || attempts || ' times (the server stopped while running it)',
                  webhook_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, webhook_next = ?
                WHERE state = 'running' AND lease_expires < ? AND attempts >= ?
                """, arguments: [now, now, now, now, maxAttempts])
            guard let row = try Row.fetchOne(db, sql: """
                UPDATE job SET state = 'running', lease_owner = ?, lease_expires = ?, attempts = attempts + 1,
                  started = ?, updated = ?, progress = 0
                WHERE id = (SELECT id FROM job
                            WHERE (state = 'queued' AND not_before <= ?) OR (state = 'running' AND lease_expires < ?)
                            ORDER BY created, id LIMIT 1)
                RETURNING *
                """, arguments: [owner, now + lease, now, now, now, now]) else { return nil }
            return JobStore.job(row, withLecture: false)
        }
    }

    /// Renews a running job's lease and records its progress. Returns false if the job is no longer
    /// this owner's, or true plus whether a cancel was requested.
    public func heartbeat(_ id: String, owner: String, lease: Double, progress: Double) throws -> (owned: Bool, cancel: Bool) {
        try db.write { db in
            let now = JobStore.now()
            try db.execute(sql: """
                UPDATE job SET lease_expires = ?, progress = ?, updated = ? WHERE id = ? AND lease_owner = ? AND state = 'running'
                """, arguments: [now + lease, progress, now, id, owner])
            guard db.changesCount > 0 else { return (false, false) }
            let cancel = try Bool.fetchOne(db, sql: "SELECT cancel_requested FROM job WHERE id = ?", arguments: [id]) ?? false
            return (true, cancel)
        }
    }

    public enum Finish: Sendable {
        case succeeded(package: String, lecture: Data)
        case failed(Job.Failure)
        /// Queued again after `delay` seconds; `countAttempt` false for a run stopped by shutdown.
        case retry(Job.Failure?, delay: Double, countAttempt: Bool)
        case cancelled
    }

    /// Ends this owner's run of a job. Final states queue the webhook when the job has a callback.
    @discardableResult
    public func finish(_ id: String, owner: String, _ finish: Finish) throws -> Bool {
        try db.write { db in
            let now = JobStore.now()
            let webhook = "webhook_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, webhook_next = \(now)"
            switch finish {
            case let .succeeded(package, lecture):
                try db.execute(sql: """
                    UPDATE job SET state = 'succeeded', package = ?, lecture = ?, progress = 100, finished = ?, updated = ?,
                      lease_owner = NULL, error_category = NULL, error_reason = NULL, \(webhook)
                    WHERE id = ? AND lease_owner = ?
                    """, arguments: [package, String(decoding: lecture, as: UTF8.self), now, now, id, owner])
            case let .failed(f):
                try db.execute(sql: """
                    UPDATE job SET state = 'failed', error_category = ?, error_reason = ?, finished = ?, updated = ?,
                      lease_owner = NULL, \(webhook)
                    WHERE id = ? AND lease_owner = ?
                    """, arguments: [f.category, f.reason, now, now, id, owner])
            case let .retry(f, delay, countAttempt):
                try db.execute(sql: """
                    UPDATE job SET state = 'queued', not_before = ?, updated = ?, lease_owner = NULL, lease_expires = NULL,
                      progress = 0, attempts = attempts - ?, error_category = COALESCE(?, error_category),
                      error_reason = COALESCE(?, error_reason)
                    WHERE id = ? AND lease_owner = ?
                    """, arguments: [now + delay, now, countAttempt ? 0 : 1, f?.category, f?.reason, id, owner])
            case .cancelled:
                try db.execute(sql: """
                    UPDATE job SET state = 'cancelled', finished = ?, updated = ?, lease_owner = NULL, \(webhook)
                    WHERE id = ? AND lease_owner = ?
                    """, arguments: [now, now, id, owner])
            }
            return db.changesCount > 0
        }
    }

    /// Cancels a job: a queued one at once, a running one by asking its runner. Returns the state after.
    public func requestCancel(_ id: String) throws -> Job.State? {
        try db.write { db in
            let now = JobStore.now()
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id]).flatMap(Job.State.init) else {
                return nil
            }
            switch state {
            case .queued:
                try db.execute(sql: """
                    UPDATE job SET state = 'cancelled', finished = ?, updated = ?,
                      webhook_state = CASE WHEN callback_url IS NULL THEN NULL ELSE 'pending' END, webhook_next = ?
                    WHERE id = ?
                    """, arguments: [now, now, now, id])
                return .cancelled
            case .running:
                try db.execute(sql: "UPDATE job SET cancel_requested = 1, updated = ? WHERE id = ?", arguments: [now, id])
                return .running
            default:
                return state
            }
        }
    }

    // MARK: webhooks

    public func dueWebhooks(limit: Int) throws -> [Job] {
        try db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM job WHERE webhook_state = 'pending' AND webhook_next <= ? ORDER BY webhook_next LIMIT ?",
                             arguments: [JobStore.now(), limit]).map { JobStore.job($0, withLecture: true) }
        }
    }

    public func webhookResult(_ id: String, delivered: Bool, error: String?, retryAfter: Double?) throws {
        try db.write { db in
            let state = delivered ? "delivered" : (retryAfter == nil ? "failed" : "pending")
            try db.execute(sql: """
                UPDATE job SET webhook_state = ?, webhook_attempts = webhook_attempts + 1, webhook_error = ?, webhook_next = ?
                WHERE id = ?
                """, arguments: [state, error, retryAfter.map { JobStore.now() + $0 }, id])
        }
    }

    // MARK: uploads

    public func addUpload(id: String, path: String, bytes: Int) throws {
        try db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO upload (id, path, bytes, created) VALUES (?, ?, ?, ?)",
                           arguments: [id, path, bytes, JobStore.now()])
        }
    }

    public func upload(_ id: String) throws -> (path: String, bytes: Int)? {
        try db.read { db in
            try Row.fetchOne(db, sql: "SELECT path, bytes FROM upload WHERE id = ?", arguments: [id]).map { ($0["path"], $0["bytes"]) }
        }
    }

    // MARK: rows

    static func job(_ row: Row, withLecture: Bool) -> Job {
        func date(_ column: String) -> Date? { (row[column] as Double?).map(Date.init(timeIntervalSince1970:)) }
        let captions = (row["captions"] as String?).flatMap { try? JSONDecoder().decode([Job.Caption].self, from: Data($0.utf8)) } ?? []
        let category: String? = row["error_category"]
        let webhookState: String? = row["webhook_state"]
        let lecture: String? = withLecture ? row["lecture"] : nil
        return Job(id: row["id"], state: Job.State(rawValue: row["state"]) ?? .failed, courseId: row["course_id"],
                   lectureId: row["lecture_id"], title: row["title"], source: row["source"], upload: row["upload"],
                   preset: row["preset"], captions: captions, callbackUrl: row["callback_url"], progress: row["progress"],
                   attempts: row["attempts"], createdAt: date("created")!, updatedAt: date("updated")!, startedAt: date("started"),
                   finishedAt: date("finished"),
                   error: category.map { Job.Failure(category: $0, reason: row["error_reason"] ?? "") },
                   package: row["package"],
                   webhook: webhookState.map { Job.Webhook(state: $0, attempts: row["webhook_attempts"], lastError: row["webhook_error"]) },
                   lectureJSON: lecture)
    }
}
