import Foundation
import GRDB
import LectureModel

/// The job queue in one SQLite file (WAL, synchronous=FULL), for `coursepack serve` on one machine.
/// The rules are JobStore's; SQLite's single writer makes each method one serialised transaction.
public final class SQLiteJobStore: JobStore {
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
        migrator.registerMigration("v2") { db in
            try db.execute(sql: """
                ALTER TABLE job ADD COLUMN spec TEXT;
                ALTER TABLE job ADD COLUMN lease_token TEXT;
                ALTER TABLE job ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3;
                CREATE TABLE run (job_id TEXT NOT NULL, worker TEXT NOT NULL, token TEXT PRIMARY KEY, started REAL NOT NULL,
                                  ended REAL, outcome TEXT);
                CREATE INDEX run_job ON run(job_id);
                CREATE TABLE worker (id TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, version TEXT NOT NULL,
                                     started REAL NOT NULL, last_seen REAL NOT NULL, running INTEGER NOT NULL,
                                     finished INTEGER NOT NULL, lease_seconds REAL NOT NULL, stopped INTEGER NOT NULL DEFAULT 0);
                """)
        }
        migrator.registerMigration("v3") { db in
            // The placing mark of JobStore.fence.
            try db.execute(sql: """
                ALTER TABLE job ADD COLUMN placing_until REAL;
                CREATE INDEX job_lecture ON job(course_id, lecture_id);
                """)
        }
        migrator.registerMigration("v4") { db in
            // Typed state: a row's state is one of Job.State's.
            for event in ["INSERT", "UPDATE OF state"] {
                try db.execute(sql: """
                    CREATE TRIGGER job_state_known_\(event.hasPrefix("INSERT") ? "insert" : "update") BEFORE \(event) ON job
                    WHEN NOT (NEW.\(StoreSQL.knownState))
                    BEGIN SELECT RAISE(ABORT, 'unknown job state'); END
                    """)
            }
        }
        migrator.registerMigration("v5") { db in
            // Each run's failure, for a job's history of attempts.
            try db.execute(sql: "ALTER TABLE run ADD COLUMN error_category TEXT; ALTER TABLE run ADD COLUMN error_reason TEXT")
        }
        try migrator.migrate(db)
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    // MARK: submitting and reading

    public func insert(_ job: Job, queueLimit: Int) async throws -> InsertResult {
        try await db.write { db in
            let waiting = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM job WHERE state = 'queued'") ?? 0
            guard waiting < queueLimit else { return .queueFull }
            let captions = String(decoding: try JSONEncoder().encode(job.captions), as: UTF8.self)
            let created = job.createdAt.timeIntervalSince1970
            try db.execute(sql: """
                INSERT INTO job (id, state, course_id, lecture_id, title, source, upload, preset, captions, callback_url,
                                 not_before, created, updated, spec, max_attempts)
                VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [job.id, job.courseId, job.lectureId, job.title, job.source, job.upload, job.preset, captions,
                                 job.callbackUrl, created, created, created, job.spec?.json, job.spec?.maxAttempts ?? 3])
            return .inserted
        }
    }

    public func job(_ id: String, withLecture: Bool) async throws -> Job? {
        try await db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]).map { Self.job($0, withLecture: withLecture) } }
    }

    public func recent(states: [Job.State], limit: Int) async throws -> [Job] {
        try await db.read { db in
            // SQLite binds no arrays: one placeholder per state.
            let marks = Array(repeating: "?", count: states.count).joined(separator: ", ")
            let args = StatementArguments(states.map(\.rawValue)) + [limit]
            return try Row.fetchAll(db, sql: "SELECT * FROM job WHERE state IN (\(marks)) ORDER BY updated DESC, id DESC LIMIT ?", arguments: args)
                .map { Self.job($0, withLecture: false) }
        }
    }

    public func list(state: Job.State?, after: String?, limit: Int) async throws -> [Job] {
        try await db.read { db in
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
            return try Row.fetchAll(db, sql: sql, arguments: StatementArguments(args)).map { Self.job($0, withLecture: false) }
        }
    }

    public func counts() async throws -> [Job.State: Int] {
        try await db.read { db in
            var out = Dictionary(uniqueKeysWithValues: Job.State.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM job GROUP BY state") {
                if let s = Job.State(rawValue: row["state"]) { out[s] = row["n"] }
            }
            return out
        }
    }

    // MARK: running

    public func claim(worker: String, lease: Double) async throws -> Claim? {
        try await db.write { db in
            let now = Self.now()
            try db.execute(sql: """
                UPDATE run SET ended = (SELECT lease_expires FROM job WHERE job.id = run.job_id), outcome = 'lease expired'
                WHERE ended IS NULL AND token IN (SELECT lease_token FROM job WHERE state = 'running' AND lease_expires < ?)
                """, arguments: [now])
            try db.execute(sql: """
                UPDATE job SET state = 'failed', finished = ?, updated = ?, lease_owner = NULL, lease_token = NULL,
                  error_category = 'internal',
                  error_reason = 'its worker was lost ' || attempts || ' times (the worker stopped while running it)',
                  \(StoreSQL.webhookDue(now: "?"))
                WHERE state = 'running' AND lease_expires < ? AND attempts >= max_attempts
                """, arguments: [now, now, now, now])
            // A cancel asked of a run that then died (or of a job queued again meanwhile) still holds.
            try db.execute(sql: """
                UPDATE run SET ended = ?, outcome = 'cancelled'
                WHERE ended IS NULL AND token IN (SELECT lease_token FROM job WHERE cancel_requested AND state = 'running' AND lease_expires < ?)
                """, arguments: [now, now])
            try db.execute(sql: """
                UPDATE job SET state = 'cancelled', finished = ?, updated = ?, lease_owner = NULL, lease_token = NULL, placing_until = NULL,
                  \(Self.webhookDue(now))
                WHERE cancel_requested AND (state = 'queued' OR (state = 'running' AND lease_expires < ?))
                """, arguments: [now, now, now])
            let token = UUID().uuidString.lowercased()
            guard let row = try Row.fetchOne(db, sql: """
                UPDATE job SET state = 'running', lease_owner = ?, lease_token = ?, lease_expires = ?, attempts = attempts + 1,
                  started = ?, updated = ?, progress = 0, cancel_requested = 0
                WHERE id = (SELECT id FROM job
                            WHERE (state = 'queued' AND not_before <= ?) OR (state = 'running' AND lease_expires < ?)
                            ORDER BY created, id LIMIT 1)
                RETURNING *
                """, arguments: [worker, token, now + lease, now, now, now, now]) else { return nil }
            let job = Self.job(row, withLecture: false)
            try db.execute(sql: "INSERT INTO run (job_id, worker, token, started) VALUES (?, ?, ?, ?)", arguments: [job.id, worker, token, now])
            return Claim(job: job, token: token)
        }
    }

    public func heartbeat(_ id: String, token: String, lease: Double, progress: Double) async throws -> (owned: Bool, cancel: Bool) {
        try await db.write { db in
            let now = Self.now()
            try db.execute(sql: """
                UPDATE job SET lease_expires = ?, progress = ?, updated = ?
                WHERE id = ? AND lease_token = ? AND state = 'running' AND lease_expires >= ?
                """, arguments: [now + lease, progress, now, id, token, now])
            guard db.changesCount > 0 else { return (false, false) }
            let cancel = try Bool.fetchOne(db, sql: "SELECT cancel_requested FROM job WHERE id = ?", arguments: [id]) ?? false
            return (true, cancel)
        }
    }

    /// Marks a job's webhook due at `now` (when it has a callback URL).
    static func webhookDue(_ now: Double) -> String { StoreSQL.webhookDue(now: "\(now)") }

    public func fence(_ id: String, token: String, lease: Double, window: Double) async throws -> Fence {
        try await db.write { db in
            let now = Self.now()
            guard let mine = try Row.fetchOne(db, sql: """
                SELECT course_id, lecture_id, created, cancel_requested FROM job
                WHERE id = ? AND lease_token = ? AND state = 'running' AND lease_expires >= ?
                """, arguments: [id, token, now]) else { return .lost }
            if mine["cancel_requested"] as Bool { return .cancelRequested }
            let course: String = mine["course_id"], lecture: String = mine["lecture_id"], created: Double = mine["created"]
            if let newer = try String.fetchOne(db, sql: """
                SELECT id FROM job WHERE course_id = ? AND lecture_id = ? AND id <> ? AND state = 'succeeded'
                  AND (created > ? OR (created = ? AND id > ?))
                ORDER BY created DESC, id DESC LIMIT 1
                """, arguments: [course, lecture, id, created, created, id]) {
                return .superseded(by: newer)
            }
            let placing = try Int.fetchOne(db, sql: """
                SELECT COUNT(*) FROM job WHERE course_id = ? AND lecture_id = ? AND id <> ? AND placing_until > ?
                """, arguments: [course, lecture, id, now]) ?? 0
            if placing > 0 { return .busy }
            try db.execute(sql: "UPDATE job SET lease_expires = ?, placing_until = ?, updated = ? WHERE id = ?",
                           arguments: [now + lease, now + window, now, id])
            return .owned
        }
    }

    public func finish(_ id: String, token: String, _ finish: Finish) async throws -> Bool {
        try await db.write { db in
            let now = Self.now()
            // The fence: this run's token, and a lease that has not run out (else another worker may
            // claim the job at any moment).
            guard try Bool.fetchOne(db, sql: """
                SELECT 1 FROM job WHERE id = ? AND lease_token = ? AND state = 'running' AND lease_expires >= ?
                """, arguments: [id, token, now]) == true else { return false }
            let ended = "finished = \(now), updated = \(now), lease_owner = NULL, lease_token = NULL, placing_until = NULL, \(Self.webhookDue(now))"
            switch finish {
            case let .succeeded(package, lecture):
                try db.execute(sql: """
                    UPDATE job SET state = 'succeeded', package = ?, lecture = ?, progress = 100, error_category = NULL,
                      error_reason = NULL, \(ended)
                    WHERE id = ?
                    """, arguments: [package, String(decoding: lecture, as: UTF8.self), id])
            case let .failed(f):
                try db.execute(sql: "UPDATE job SET state = 'failed', error_category = ?, error_reason = ?, \(ended) WHERE id = ?",
                               arguments: [f.category.rawValue, f.reason, id])
            case let .retry(f, delay, countAttempt):
                try db.execute(sql: """
                    UPDATE job SET state = 'queued', not_before = ?, updated = ?, lease_owner = NULL, lease_token = NULL,
                      lease_expires = NULL, placing_until = NULL, progress = 0, attempts = attempts - ?,
                      error_category = COALESCE(?, error_category), error_reason = COALESCE(?, error_reason)
                    WHERE id = ?
                    """, arguments: [now + delay, now, countAttempt ? 0 : 1, f?.category.rawValue, f?.reason, id])
            case .cancelled:
                try db.execute(sql: "UPDATE job SET state = 'cancelled', \(ended) WHERE id = ?", arguments: [id])
            case let .superseded(newer):
                try db.execute(sql: "UPDATE job SET state = 'superseded', error_category = 'interrupted', error_reason = ?, \(ended) WHERE id = ?",
                               arguments: [Finish.supersededReason(newer), id])
            }
            let (outcome, failure) = finish.outcome
            try db.execute(sql: "UPDATE run SET ended = ?, outcome = ?, error_category = ?, error_reason = ? WHERE token = ?",
                           arguments: [now, outcome, failure?.category.rawValue, failure?.reason, token])
            return true
        }
    }

    public func requestCancel(_ id: String) async throws -> Job.State? {
        try await db.write { db in
            let now = Self.now()
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id]).flatMap(Job.State.init) else {
                return nil
            }
            switch state {
            case .queued:
                try db.execute(sql: """
                    UPDATE job SET state = 'cancelled', finished = ?, updated = ?, \(StoreSQL.webhookDue(now: "?"))
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

    public func retry(_ id: String) async throws -> Job.State? {
        try await db.write { db in
            guard let state = try String.fetchOne(db, sql: "SELECT state FROM job WHERE id = ?", arguments: [id]).flatMap(Job.State.init) else {
                return nil
            }
            guard [.failed, .cancelled, .superseded].contains(state) else { return state }
            let now = Self.now()
            try db.execute(sql: """
                UPDATE job SET \(StoreSQL.requeued), not_before = ?, updated = ? WHERE id = ?
                """, arguments: [now, now, id])
            return .queued
        }
    }

    public func runs(of id: String) async throws -> [RunRecord] {
        try await db.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM run WHERE job_id = ? ORDER BY started, token", arguments: [id]).map { row in
                let category = (row["error_category"] as String?).flatMap(FailureCategory.init)
                return RunRecord(worker: row["worker"], started: Date(timeIntervalSince1970: row["started"]),
                                 ended: (row["ended"] as Double?).map(Date.init(timeIntervalSince1970:)), outcome: row["outcome"],
                                 failure: category.map { Job.Failure(category: $0, reason: row["error_reason"] ?? "") })
            }
        }
    }

    public func holders() async throws -> [String: String] {
        try await db.read { db in
            var out: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: StoreSQL.holders) { out[row[0]] = row[1] }
            return out
        }
    }

    // MARK: webhooks

    public func claimWebhooks(limit: Int, lease: Double) async throws -> [Job] {
        try await db.write { db in
            let now = Self.now()
            let rows = try Row.fetchAll(db, sql: "SELECT * FROM job WHERE webhook_state = 'pending' AND webhook_next <= ? ORDER BY webhook_next LIMIT ?",
                                        arguments: [now, limit])
            for row in rows {
                try db.execute(sql: "UPDATE job SET webhook_next = ? WHERE id = ?", arguments: [now + lease, row["id"] as String])
            }
            return rows.map { Self.job($0, withLecture: true) }
        }
    }

    public func webhookResult(_ id: String, delivered: Bool, error: String?, retryAfter: Double?) async throws {
        try await db.write { db in
            let state = delivered ? "delivered" : (retryAfter == nil ? "failed" : "pending")
            try db.execute(sql: """
                UPDATE job SET webhook_state = ?, webhook_attempts = webhook_attempts + 1, webhook_error = ?, webhook_next = ?
                WHERE id = ?
                """, arguments: [state, error, retryAfter.map { Self.now() + $0 }, id])
        }
    }

    // MARK: uploads

    public func addUpload(id: String, path: String, bytes: Int) async throws {
        try await db.write { db in
            try db.execute(sql: "INSERT OR REPLACE INTO upload (id, path, bytes, created) VALUES (?, ?, ?, ?)",
                           arguments: [id, path, bytes, Self.now()])
        }
    }

    public func upload(_ id: String) async throws -> (path: String, bytes: Int)? {
        try await db.read { db in
            try Row.fetchOne(db, sql: "SELECT path, bytes FROM upload WHERE id = ?", arguments: [id]).map { ($0["path"], $0["bytes"]) }
        }
    }

    // MARK: workers

    public func workerBeat(_ w: WorkerRecord, stopped: Bool) async throws {
        try await db.write { db in
            try db.execute(sql: """
                INSERT INTO worker (id, name, host, version, started, last_seen, running, finished, lease_seconds, stopped)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET last_seen = excluded.last_seen, running = excluded.running,
                  finished = excluded.finished, stopped = excluded.stopped
                """, arguments: [w.id, w.name, w.host, w.version, w.startedAt.timeIntervalSince1970, Self.now(), w.running, w.finished,
                                 w.leaseSeconds, stopped])
        }
    }

    public func workers() async throws -> [WorkerRecord] {
        try await db.read { db in
            let now = Self.now()
            return try Row.fetchAll(db, sql: "SELECT * FROM worker WHERE last_seen > ? ORDER BY name, id", arguments: [now - 86400]).map { r in
                let last: Double = r["last_seen"], lease: Double = r["lease_seconds"], stopped: Bool = r["stopped"]
                return WorkerRecord(id: r["id"], name: r["name"], host: r["host"], version: r["version"],
                                    startedAt: Date(timeIntervalSince1970: r["started"]), lastHeartbeat: Date(timeIntervalSince1970: last),
                                    running: r["running"], finished: r["finished"], leaseSeconds: lease,
                                    state: stopped ? .stopped : (now - last > lease ? .lost : .active))
            }
        }
    }

    public func waitForWork(seconds: Double) async {
        try? await Task.sleep(for: .seconds(min(seconds, 0.2)))
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
                   error: category.map { Job.Failure(category: FailureCategory(rawValue: $0) ?? .internal, reason: row["error_reason"] ?? "") },
                   package: row["package"],
                   webhook: webhookState.map { Job.Webhook(state: $0, attempts: row["webhook_attempts"], lastError: row["webhook_error"]) },
                   lectureJSON: lecture, spec: JobSpec.decode(row["spec"]))
    }
}
