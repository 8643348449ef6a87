import Foundation
import LectureModel
public import Logging
import NIOCore
import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// The job queue in PostgreSQL, shared by API servers and workers on many machines, the way River,
/// Oban and graphile-worker keep theirs: a worker claims the oldest runnable job with
/// `FOR UPDATE SKIP LOCKED` in a short transaction, holds it by a lease it renews, and a submission
/// wakes idle workers with NOTIFY. Times come from the database's clock (`cp_now()`).
///
/// The store is a service: its connection pool and the listener that wakes idle workers run in
/// `run()`, in the service group of the server or worker that uses it, listed before the services
/// that use it so that a graceful shutdown stops them first and the store last. Queries wait while
/// it is not running.
public final class PostgresJobStore: JobStore, Service {
    /// The channel a submission notifies.
    static let channel = "coursepack_jobs"
    /// The advisory lock keys, by what each serialises. `placing` is the seed of a lecture's own key
    /// (`hashtextextended("COURSE/LECTURE", placing)`), so those keys do not meet the two fixed ones.
    enum AdvisoryKey {
        /// Held while migrating: two servers starting together take turns.
        static let migrations: Int64 = 0x436F_7572_7365_5061
        /// Held by a submission while it counts the queue, so the queue limit holds across servers.
        static let queueCount: Int64 = 0x436F_7572_7365_5062
        /// Seed of the per-lecture key held while a run checks and marks its lecture for placing.
        static let placing: Int64 = 0x436F_7572_7365_5063
    }

    private let pool: PostgresClient
    /// Opened when `run()` starts the pool: a query made before waits here, not in the pool (which
    /// logs a warning for each such lease).
    private let poolRunning = Gate()
    /// The connection pool, once `run()` runs it.
    var client: PostgresClient {
        get async {
            await poolRunning.wait()
            return pool
        }
    }
    let connection: PostgresConnection.Configuration
    let logger: Logger
    /// The URL without its password, for messages.
    public let displayURL: String
    private let bell = Doorbell()

    /// Connects, applies the schema migrations that are missing, and returns the store. Throws a
    /// usage error naming the database when it cannot be reached within `timeout` seconds.
    public static func open(url: String, logger: Logger, timeout: Double = 10) async throws -> PostgresJobStore {
        let target = try DatabaseURL(url)
        let store = PostgresJobStore(target: target, logger: logger)
        // A database that is starting up, or a connection refused or reset, is tried again until the
        // deadline; an answer from the server (no such role or database, bad password) ends it at once.
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            do {
                try await withDeadline(seconds: max(0.1, deadline.timeIntervalSinceNow)) { try await store.migrate() }
                return store
            } catch {
                if DatabaseURL.isTransient(error), deadline.timeIntervalSinceNow > 0.5 {
                    try? await Task.sleep(for: .milliseconds(500))
                    continue
                }
                throw CoursePackError(.usage, path: target.display, "cannot use the database: \(DatabaseURL.describe(error))")
            }
        }
    }

    private init(target: DatabaseURL, logger: Logger) {
        var config = target.clientConfiguration
        config.options.connectTimeout = .seconds(5)
        config.options.maximumConnections = 8
        // The pool logs each failed connection at info level; one line per outage is ours to write.
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        pool = PostgresClient(configuration: config, backgroundLogger: background)
        connection = target.connectionConfiguration
        self.logger = logger
        displayURL = target.display
    }

    /// Runs the connection pool and the listener until the task is cancelled or the service group
    /// shuts down gracefully.
    public func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask {
                self.poolRunning.open()
                await self.pool.run()
            }
            group.addTask { await cancelWhenGracefulShutdown { await self.listen() } }
        }
    }

    // MARK: schema

    /// Versioned migrations, applied in order, each in its own transaction, under an advisory lock.
    static let migrations: [(version: Int, sql: [String])] = [
        (1, [
            """
            CREATE OR REPLACE FUNCTION cp_now() RETURNS float8 LANGUAGE sql VOLATILE
              AS $$ SELECT extract(epoch FROM clock_timestamp())::float8 $$
            """,
            """
            CREATE TABLE job (
              id text PRIMARY KEY,
              state text NOT NULL,
              course_id text NOT NULL,
              lecture_id text NOT NULL,
              title text,
              source text NOT NULL,
              upload text,
              preset text NOT NULL,
              captions text NOT NULL,
              callback_url text,
              progress float8 NOT NULL DEFAULT 0,
              attempts bigint NOT NULL DEFAULT 0,
              max_attempts bigint NOT NULL DEFAULT 3,
              not_before float8 NOT NULL,
              lease_owner text,
              lease_token text,
              lease_expires float8,
              cancel_requested boolean NOT NULL DEFAULT false,
              error_category text,
              error_reason text,
              package text,
              lecture text,
              spec text,
              created float8 NOT NULL,
              updated float8 NOT NULL,
              started float8,
              finished float8,
              webhook_state text,
              webhook_attempts bigint NOT NULL DEFAULT 0,
              webhook_next float8,
              webhook_error text
            )
            """,
            "CREATE INDEX job_runnable ON job (created, id) WHERE state IN ('queued', 'running')",
            "CREATE INDEX job_state_created ON job (state, created, id)",
            "CREATE INDEX job_webhook ON job (webhook_next) WHERE webhook_state = 'pending'",
            "CREATE TABLE upload (id text PRIMARY KEY, path text NOT NULL, bytes bigint NOT NULL, created float8 NOT NULL)",
            """
            CREATE TABLE run (job_id text NOT NULL, worker text NOT NULL, token text PRIMARY KEY, started float8 NOT NULL,
                              ended float8, outcome text)
            """,
            "CREATE INDEX run_job ON run (job_id)",
            """
            CREATE TABLE worker (id text PRIMARY KEY, name text NOT NULL, host text NOT NULL, version text NOT NULL,
                                 started float8 NOT NULL, last_seen float8 NOT NULL, running bigint NOT NULL,
                                 finished bigint NOT NULL, lease_seconds float8 NOT NULL, stopped boolean NOT NULL DEFAULT false)
            """,
        ]),
        // The placing mark of JobStore.fence: while set and in the future, no other job of the lecture places.
        (2, ["ALTER TABLE job ADD COLUMN placing_until float8", "CREATE INDEX job_lecture ON job (course_id, lecture_id)"]),
        // Typed state: a row's state is one of Job.State's (SQLite: triggers, its migration v4).
        (3, ["ALTER TABLE job ADD CONSTRAINT job_state_known CHECK (\(StoreSQL.knownState))"]),
        // Each run's failure, for a job's history of attempts.
        (4, ["ALTER TABLE run ADD COLUMN error_category text", "ALTER TABLE run ADD COLUMN error_reason text"]),
        // Real timestamps: every time is a timestamptz (the epoch seconds of versions 1-4 converted in
        // place), `cp_now()` the database's clock as one, and `cp_after(s)` that clock plus s seconds.
        // (SQLite has no time type: its store keeps epoch seconds in REAL columns.)
        (5, [
            "DROP FUNCTION cp_now()",
            "CREATE FUNCTION cp_now() RETURNS timestamptz LANGUAGE sql VOLATILE AS $$ SELECT clock_timestamp() $$",
            """
            CREATE FUNCTION cp_after(seconds float8) RETURNS timestamptz LANGUAGE sql VOLATILE
              AS $$ SELECT clock_timestamp() + make_interval(secs => seconds) $$
            """,
            timestamps("job", ["not_before", "lease_expires", "created", "updated", "started", "finished", "webhook_next",
                               "placing_until"]),
            timestamps("upload", ["created"]),
            timestamps("run", ["started", "ended"]),
            timestamps("worker", ["started", "last_seen"]),
            // Made by `migrate` itself: float8 in a database made before version 5, timestamptz after.
            """
            DO $$ BEGIN
              IF (SELECT data_type FROM information_schema.columns
                  WHERE table_schema = current_schema() AND table_name = 'coursepack_migration' AND column_name = 'applied') = 'double precision'
              THEN \(timestamps("coursepack_migration", ["applied"]));
              END IF;
            END $$
            """,
        ]),
    ]

    func migrate() async throws {
        let conn = try await PostgresConnection.connect(configuration: connection, id: 0, logger: logger)
        do {
            try await conn.query("SELECT pg_advisory_lock(\(AdvisoryKey.migrations))", logger: logger)
            try await conn.query("""
                CREATE TABLE IF NOT EXISTS coursepack_migration (version bigint PRIMARY KEY, applied timestamptz NOT NULL)
                """, logger: logger)
            var applied: Set<Int> = []
            for try await v in try await conn.query("SELECT version FROM coursepack_migration", logger: logger).decode(Int.self) {
                applied.insert(v)
            }
            for m in Self.migrations where !applied.contains(m.version) {
                try await conn.withTransaction(logger: logger) { c in
                    for statement in m.sql { try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger) }
                    try await c.query("INSERT INTO coursepack_migration VALUES (\(m.version), now())", logger: logger)
                }
                logger.info("database \(displayURL): schema version \(m.version) applied")
            }
            try await conn.query("SELECT pg_advisory_unlock(\(AdvisoryKey.migrations))", logger: logger)
        } catch {
            try? await conn.close()
            throw error
        }
        try await conn.close()
    }

    // MARK: submitting and reading

    public func insert(_ job: Job, queueLimit: Int) async throws -> InsertResult {
        let captions = String(decoding: try JSONEncoder().encode(job.captions), as: UTF8.self)
        let created = job.createdAt
        return try await client.withTransaction(logger: logger) { c in
            // One submitter at a time counts the queue, so the limit holds across servers.
            try await c.query("SELECT pg_advisory_xact_lock(\(AdvisoryKey.queueCount))", logger: logger)
            let waiting = try await c.query("SELECT count(*) FROM job WHERE state = 'queued'", logger: logger).decode(Int.self)
                .reduce(0) { $0 + $1 }
            guard waiting < queueLimit else { return InsertResult.queueFull }
            try await c.query("""
                INSERT INTO job (id, state, course_id, lecture_id, title, source, upload, preset, captions, callback_url,
                                 not_before, created, updated, spec, max_attempts)
                VALUES (\(job.id), 'queued', \(job.courseId), \(job.lectureId), \(job.title), \(job.source), \(job.upload),
                        \(job.preset), \(captions), \(job.callbackUrl), \(created), \(created), \(created), \(job.spec?.json),
                        \(job.spec?.maxAttempts ?? 3))
                """, logger: logger)
            try await c.query("SELECT pg_notify(\(Self.channel), \(job.id))", logger: logger)
            return InsertResult.inserted
        }
    }

    public func job(_ id: String, withLecture: Bool) async throws -> Job? {
        try await first(client.query("SELECT * FROM job WHERE id = \(id)", logger: logger), withLecture: withLecture)
    }

    public func list(state: Job.State?, after: String?, limit: Int) async throws -> [Job] {
        let state = state?.rawValue
        let rows = try await client.query("""
            SELECT * FROM job
            WHERE (\(state)::text IS NULL OR state = \(state))
              AND (\(after)::text IS NULL OR NOT EXISTS (SELECT 1 FROM job WHERE id = \(after))
                   OR (created, id) > (SELECT created, id FROM job WHERE id = \(after)))
            ORDER BY created, id LIMIT \(limit)
            """, logger: logger)
        var jobs: [Job] = []
        for try await row in rows { jobs.append(try Self.job(row, withLecture: false)) }
        return jobs
    }

    public func recent(states: [Job.State], limit: Int) async throws -> [Job] {
        let names = states.map(\.rawValue)
        var jobs: [Job] = []
        for try await row in try await client.query("""
            SELECT * FROM job WHERE state = ANY(\(names)) ORDER BY updated DESC, id DESC LIMIT \(limit)
            """, logger: logger) {
            jobs.append(try Self.job(row, withLecture: false))
        }
        return jobs
    }

    public func counts() async throws -> [Job.State: Int] {
        var out = Dictionary(uniqueKeysWithValues: Job.State.allCases.map { ($0, 0) })
        for try await (state, n) in try await client.query("SELECT state, count(*) FROM job GROUP BY state", logger: logger)
            .decode((String, Int).self) {
            if let s = Job.State(rawValue: state) { out[s] = n }
        }
        return out
    }

    // MARK: running

    public func claim(worker: String, lease: Double) async throws -> Claim? {
        let token = UUID().uuidString.lowercased()
        return try await client.withTransaction(logger: logger) { c -> Claim? in
            // Runs whose worker was lost end at their lease's expiry; jobs lost too often fail.
            try await c.query("""
                WITH lost AS (SELECT id FROM job WHERE state = 'running' AND lease_expires < cp_now() FOR UPDATE SKIP LOCKED),
                     closed AS (UPDATE run SET ended = job.lease_expires, outcome = 'lease expired'
                                FROM job WHERE job.id IN (SELECT id FROM lost) AND run.token = job.lease_token AND run.ended IS NULL)
                UPDATE job SET state = 'failed', finished = cp_now(), updated = cp_now(), lease_owner = NULL, lease_token = NULL,
                  error_category = 'internal',
                  error_reason = 'its worker was lost ' || attempts || ' times (the worker stopped while running it)',
                  placing_until = NULL, \(unescaped: Self.webhookDue)
                WHERE id IN (SELECT id FROM lost) AND attempts >= max_attempts
                """, logger: logger)
            // A cancel asked of a run that then died (or of a job queued again meanwhile) still holds.
            try await c.query("""
                WITH gone AS (SELECT id FROM job WHERE cancel_requested
                                AND (state = 'queued' OR (state = 'running' AND lease_expires < cp_now())) FOR UPDATE SKIP LOCKED),
                     closed AS (UPDATE run SET ended = cp_now(), outcome = 'cancelled'
                                FROM job WHERE job.id IN (SELECT id FROM gone) AND run.token = job.lease_token AND run.ended IS NULL)
                UPDATE job SET state = 'cancelled', finished = cp_now(), updated = cp_now(), lease_owner = NULL, lease_token = NULL,
                  placing_until = NULL, \(unescaped: Self.webhookDue)
                WHERE id IN (SELECT id FROM gone)
                """, logger: logger)
            let rows = try await c.query("""
                WITH next AS (
                  SELECT id FROM job
                  WHERE (state = 'queued' AND not_before <= cp_now()) OR (state = 'running' AND lease_expires < cp_now())
                  ORDER BY created, id LIMIT 1 FOR UPDATE SKIP LOCKED)
                UPDATE job SET state = 'running', lease_owner = \(worker), lease_token = \(token),
                  lease_expires = cp_after(\(lease)), attempts = attempts + 1, started = cp_now(), updated = cp_now(),
                  progress = 0, cancel_requested = false
                FROM next WHERE job.id = next.id
                RETURNING job.*
                """, logger: logger)
            guard let job = try await self.first(rows, withLecture: false) else { return nil }
            try await c.query("""
                INSERT INTO run (job_id, worker, token, started) VALUES (\(job.id), \(worker), \(token), cp_now())
                """, logger: logger)
            return Claim(job: job, token: token)
        }
    }

    public func heartbeat(_ id: String, token: String, lease: Double, progress: Double) async throws -> (owned: Bool, cancel: Bool) {
        let rows = try await client.query("""
            UPDATE job SET lease_expires = cp_after(\(lease)), progress = \(progress), updated = cp_now()
            WHERE id = \(id) AND lease_token = \(token) AND state = 'running' AND lease_expires >= cp_now()
            RETURNING cancel_requested
            """, logger: logger)
        for try await cancel in rows.decode(Bool.self) { return (true, cancel) }
        return (false, false)
    }

    /// Marks a job's webhook due now (when it has a callback URL).
    static let webhookDue = StoreSQL.webhookDue(now: "cp_now()")

    public func fence(_ id: String, token: String, lease: Double, window: Double) async throws -> Fence {
        try await client.withTransaction(logger: logger) { c -> Fence in
            var mine: (course: String, lecture: String, created: Date, cancel: Bool)?
            for try await row in try await c.query("""
                SELECT course_id, lecture_id, created, cancel_requested FROM job
                WHERE id = \(id) AND lease_token = \(token) AND state = 'running' AND lease_expires >= cp_now()
                FOR UPDATE
                """, logger: logger).decode((String, String, Date, Bool).self) {
                mine = (row.0, row.1, row.2, row.3)
            }
            guard let mine else { return .lost }
            if mine.cancel { return .cancelRequested }
            // One placer per lecture at a time, across servers and workers.
            let key = "\(mine.course)/\(mine.lecture)"
            try await c.query("SELECT pg_advisory_xact_lock(hashtextextended(\(key), \(AdvisoryKey.placing)))", logger: logger)
            for try await newer in try await c.query("""
                SELECT id FROM job WHERE course_id = \(mine.course) AND lecture_id = \(mine.lecture) AND id <> \(id)
                  AND state = 'succeeded' AND (created, id) > (\(mine.created), \(id))
                ORDER BY created DESC, id DESC LIMIT 1
                """, logger: logger).decode(String.self) {
                return .superseded(by: newer)
            }
            let placing = try await c.query("""
                SELECT count(*) FROM job WHERE course_id = \(mine.course) AND lecture_id = \(mine.lecture) AND id <> \(id)
                  AND placing_until > cp_now()
                """, logger: logger).decode(Int.self).reduce(0) { $0 + $1 }
            if placing > 0 { return .busy }
            try await c.query("""
                UPDATE job SET lease_expires = cp_after(\(lease)), placing_until = cp_after(\(window)), updated = cp_now()
                WHERE id = \(id)
                """, logger: logger)
            return .owned
        }
    }

    public func finish(_ id: String, token: String, _ finish: Finish) async throws -> Bool {
        try await client.withTransaction(logger: logger) { c in
            // The fence: this run's token and a live lease, with the row locked until the commit.
            let owned = try await c.query("""
                SELECT 1 FROM job WHERE id = \(id) AND lease_token = \(token) AND state = 'running' AND lease_expires >= cp_now()
                FOR UPDATE
                """, logger: logger).decode(Int.self).reduce(0) { $0 + $1 } == 1
            guard owned else { return false }
            let ended = PostgresQuery(unsafeSQL: "finished = cp_now(), updated = cp_now(), lease_owner = NULL, lease_token = NULL, placing_until = NULL, \(Self.webhookDue)")
            switch finish {
            case let .succeeded(package, lecture):
                try await c.query("""
                    UPDATE job SET state = 'succeeded', package = \(package), lecture = \(String(decoding: lecture, as: UTF8.self)),
                      progress = 100, error_category = NULL, error_reason = NULL, \(unescaped: ended.sql)
                    WHERE id = \(id)
                    """, logger: logger)
            case let .failed(f):
                try await c.query("""
                    UPDATE job SET state = 'failed', error_category = \(f.category.rawValue), error_reason = \(f.reason), \(unescaped: ended.sql)
                    WHERE id = \(id)
                    """, logger: logger)
            case let .retry(f, delay, countAttempt):
                try await c.query("""
                    UPDATE job SET state = 'queued', not_before = cp_after(\(delay)), updated = cp_now(), lease_owner = NULL,
                      lease_token = NULL, lease_expires = NULL, placing_until = NULL, progress = 0, attempts = attempts - \(countAttempt ? 0 : 1),
                      error_category = COALESCE(\(f?.category.rawValue), error_category), error_reason = COALESCE(\(f?.reason), error_reason)
                    WHERE id = \(id)
                    """, logger: logger)
                if delay <= 0 { try await c.query("SELECT pg_notify(\(Self.channel), \(id))", logger: logger) }
            case .cancelled:
                try await c.query("UPDATE job SET state = 'cancelled', \(unescaped: ended.sql) WHERE id = \(id)", logger: logger)
            case let .superseded(newer):
                let reason = Finish.supersededReason(newer)
                try await c.query("""
                    UPDATE job SET state = 'superseded', error_category = 'interrupted', error_reason = \(reason), \(unescaped: ended.sql)
                    WHERE id = \(id)
                    """, logger: logger)
            }
            let (outcome, failure) = finish.outcome
            try await c.query("""
                UPDATE run SET ended = cp_now(), outcome = \(outcome), error_category = \(failure?.category.rawValue),
                  error_reason = \(failure?.reason)
                WHERE token = \(token)
                """, logger: logger)
            return true
        }
    }

    public func requestCancel(_ id: String) async throws -> Job.State? {
        try await client.withTransaction(logger: logger) { c -> Job.State? in
            var state: Job.State?
            for try await s in try await c.query("SELECT state FROM job WHERE id = \(id) FOR UPDATE", logger: logger).decode(String.self) {
                state = Job.State(rawValue: s)
            }
            switch state {
            case .queued?:
                try await c.query("""
                    UPDATE job SET state = 'cancelled', finished = cp_now(), updated = cp_now(), \(unescaped: Self.webhookDue)
                    WHERE id = \(id)
                    """, logger: logger)
                return .cancelled
            case .running?:
                try await c.query("UPDATE job SET cancel_requested = true, updated = cp_now() WHERE id = \(id)", logger: logger)
                return .running
            default:
                return state
            }
        }
    }

    public func retry(_ id: String) async throws -> Job.State? {
        try await client.withTransaction(logger: logger) { c in
            var state: Job.State?
            for try await v in try await c.query("SELECT state FROM job WHERE id = \(id) FOR UPDATE", logger: logger).decode(String.self) {
                state = Job.State(rawValue: v)
            }
            guard let state else { return nil }
            guard [.failed, .cancelled, .superseded].contains(state) else { return state }
            try await c.query("""
                UPDATE job SET \(unescaped: StoreSQL.requeued), not_before = cp_now(), updated = cp_now() WHERE id = \(id)
                """, logger: logger)
            try await c.query("SELECT pg_notify(\(Self.channel), \(id))", logger: logger)
            return .queued
        }
    }

    public func runs(of id: String) async throws -> [RunRecord] {
        var runs: [RunRecord] = []
        for try await (worker, started, ended, outcome, category, reason) in try await client.query("""
            SELECT worker, started, ended, outcome, error_category, error_reason FROM run WHERE job_id = \(id) ORDER BY started, token
            """, logger: logger).decode((String, Date, Date?, String?, String?, String?).self) {
            runs.append(RunRecord(worker: worker, started: started, ended: ended,
                                  outcome: outcome, failure: category.flatMap(FailureCategory.init).map { Job.Failure(category: $0, reason: reason ?? "") }))
        }
        return runs
    }

    public func holders() async throws -> [String: String] {
        var out: [String: String] = [:]
        for try await (job, worker) in try await client.query(PostgresQuery(unsafeSQL: StoreSQL.holders), logger: logger)
            .decode((String, String).self) {
            out[job] = worker
        }
        return out
    }

    // MARK: webhooks

    public func claimWebhooks(limit: Int, lease: Double) async throws -> [Job] {
        let rows = try await client.query("""
            UPDATE job SET webhook_next = cp_after(\(lease))
            WHERE id IN (SELECT id FROM job WHERE webhook_state = 'pending' AND webhook_next <= cp_now()
                         ORDER BY webhook_next LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING *
            """, logger: logger)
        var jobs: [Job] = []
        for try await row in rows { jobs.append(try Self.job(row, withLecture: true)) }
        return jobs
    }

    public func webhookResult(_ id: String, delivered: Bool, error: String?, retryAfter: Double?) async throws {
        let state = delivered ? "delivered" : (retryAfter == nil ? "failed" : "pending")
        try await client.query("""
            UPDATE job SET webhook_state = \(state), webhook_attempts = webhook_attempts + 1, webhook_error = \(error),
              webhook_next = cp_after(\(retryAfter ?? 0))
            WHERE id = \(id)
            """, logger: logger)
    }

    // MARK: uploads

    public func addUpload(id: String, path: String, bytes: Int) async throws {
        try await client.query("""
            INSERT INTO upload (id, path, bytes, created) VALUES (\(id), \(path), \(bytes), cp_now())
            ON CONFLICT (id) DO UPDATE SET path = excluded.path, bytes = excluded.bytes, created = excluded.created
            """, logger: logger)
    }

    public func upload(_ id: String) async throws -> (path: String, bytes: Int)? {
        for try await (path, bytes) in try await client.query("SELECT path, bytes FROM upload WHERE id = \(id)", logger: logger)
            .decode((String, Int).self) {
            return (path, bytes)
        }
        return nil
    }

    // MARK: workers

    public func workerBeat(_ w: WorkerRecord, stopped: Bool) async throws {
        try await client.query("""
            INSERT INTO worker (id, name, host, version, started, last_seen, running, finished, lease_seconds, stopped)
            VALUES (\(w.id), \(w.name), \(w.host), \(w.version), \(w.startedAt), cp_now(), \(w.running),
                    \(w.finished), \(w.leaseSeconds), \(stopped))
            ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, running = excluded.running,
              finished = excluded.finished, stopped = excluded.stopped
            """, logger: logger)
    }

    public func workers() async throws -> [WorkerRecord] {
        let rows = try await client.query("""
            SELECT id, name, host, version, started, last_seen, running, finished, lease_seconds, stopped, cp_now()
            FROM worker WHERE last_seen > cp_now() - interval '1 day' ORDER BY name, id
            """, logger: logger)
        var out: [WorkerRecord] = []
        for try await (id, name, host, version, started, last, running, finished, lease, stopped, now) in rows
            .decode((String, String, String, String, Date, Date, Int, Int, Double, Bool, Date).self) {
            out.append(WorkerRecord(id: id, name: name, host: host, version: version, startedAt: started,
                                    lastHeartbeat: last, running: running, finished: finished,
                                    leaseSeconds: lease, state: stopped ? .stopped : (now.timeIntervalSince(last) > lease ? .lost : .active)))
        }
        return out
    }

    // MARK: waking idle workers

    /// Ends at a notification on `coursepack_jobs` (a submission), or after `seconds`.
    public func waitForWork(seconds: Double) async {
        await bell.wait(seconds: seconds)
    }

    /// Listens on a connection of its own (LISTEN coursepack_jobs) until cancelled, reconnecting
    /// after a failure; each notification rings the bell that ends every wait.
    private func listen() async {
        while !Task.isCancelled {
            do {
                let conn = try await PostgresConnection.connect(configuration: connection, id: 1, logger: logger)
                do {
                    try await conn.listen(on: Self.channel) { notifications in
                        bell.ring()  // a job may have come while there was no listener
                        for try await _ in notifications { bell.ring() }
                    }
                } catch {
                    try? await conn.close()
                    throw error
                }
                try? await conn.close()
            } catch {
                if Task.isCancelled { break }
                logger.debug("listening for jobs: \(error); reconnecting")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    // MARK: rows

    private func first(_ rows: PostgresRowSequence, withLecture: Bool) async throws -> Job? {
        for try await row in rows { return try Self.job(row, withLecture: withLecture) }
        return nil
    }

    static func job(_ row: PostgresRow, withLecture: Bool) throws -> Job {
        let r = row.makeRandomAccess()
        func v<T: PostgresDecodable>(_ column: String, _: T.Type = T.self) throws -> T { try r[column].decode(T.self) }
        func date(_ column: String) throws -> Date? { try v(column, Date?.self) }
        let captions = try v("captions", String.self)
        let category = try v("error_category", String?.self)
        let webhookState = try v("webhook_state", String?.self)
        return Job(id: try v("id"), state: Job.State(rawValue: try v("state")) ?? .failed, courseId: try v("course_id"),
                   lectureId: try v("lecture_id"), title: try v("title"), source: try v("source"), upload: try v("upload"),
                   preset: try v("preset"),
                   captions: (try? JSONDecoder().decode([Job.Caption].self, from: Data(captions.utf8))) ?? [],
                   callbackUrl: try v("callback_url"), progress: try v("progress"), attempts: try v("attempts"),
                   createdAt: try date("created")!, updatedAt: try date("updated")!, startedAt: try date("started"),
                   finishedAt: try date("finished"),
                   error: try category.map { Job.Failure(category: FailureCategory(rawValue: $0) ?? .internal, reason: try v("error_reason", String?.self) ?? "") },
                   package: try v("package"),
                   webhook: try webhookState.map {
                       Job.Webhook(state: $0, attempts: try v("webhook_attempts"), lastError: try v("webhook_error"))
                   },
                   lectureJSON: withLecture ? try v("lecture") : nil, spec: JobSpec.decode(try v("spec")))
    }
}

/// A `postgres://USER:PASSWORD@HOST:PORT/DATABASE` URL (libpq's form); `?host=/run/postgresql` names
/// a Unix socket folder instead, `?sslmode=require` asks for TLS.
struct DatabaseURL {
    var host: String
    var port: Int
    var socketFolder: String?
    var user: String
    var password: String?
    var database: String
    var tls: Bool
    /// The URL as given, without its password.
    var display: String

    init(_ text: String) throws {
        guard let c = URLComponents(string: text), ["postgres", "postgresql"].contains(c.scheme?.lowercased() ?? "") else {
            throw CoursePackError(.usage, path: "--database", "not a postgres:// URL")
        }
        let query = Dictionary((c.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        host = c.host?.isEmpty == false ? c.host! : "localhost"
        port = c.port ?? Int(query["port"] ?? "") ?? 5432
        socketFolder = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        user = c.user?.removingPercentEncoding ?? ProcessInfo.processInfo.environment["USER"] ?? "postgres"
        password = c.password?.removingPercentEncoding
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        tls = ["require", "verify-ca", "verify-full"].contains(query["sslmode"] ?? "")
        var shown = c
        if shown.password != nil { shown.password = "***" }
        display = shown.string ?? "database"
        guard (1...65535).contains(port) else { throw CoursePackError(.usage, path: display, "port must be 1-65535") }
    }

    var clientConfiguration: PostgresClient.Configuration {
        if let socketFolder {
            return .init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        }
        return .init(host: host, port: port, username: user, password: password, database: database,
                     tls: tls ? .require(.makeClientConfiguration()) : .disable)
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        var c: PostgresConnection.Configuration
        if let socketFolder {
            c = .init(unixSocketPath: "\(socketFolder)/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            c = .init(host: host, port: port, username: user, password: password, database: database,
                      tls: tls ? .require(try! .init(configuration: .makeClientConfiguration())) : .disable)
        }
        c.options.connectTimeout = .seconds(5)
        return c
    }

    /// True for errors worth another try: no connection, or the server starting or shutting down.
    static func isTransient(_ error: any Error) -> Bool {
        guard let e = error as? PSQLError else { return !(error is DeadlineExceeded) }
        guard let state = e.serverInfo?[.sqlState] else { return true }
        return state.hasPrefix("57P") || state.hasPrefix("08")
    }

    /// A one-line reason from PostgresNIO's errors (whose descriptions hide the server's message).
    static func describe(_ error: any Error) -> String {
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] { return message }
            if let underlying = e.underlying { return "\(underlying)" }
            return "\(e.code)"
        }
        if error is DeadlineExceeded { return "no answer in time" }
        return "\(error)"
    }
}

/// Wakes waiters: `ring` ends every `wait` in progress.
final class Doorbell: Sendable {
    private let rings = Mutex(0)

    func ring() { rings.withLock { $0 += 1 } }

    func wait(seconds: Double) async {
        let start = rings.withLock { $0 }
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline, rings.withLock({ $0 }) == start, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }
}

/// SQL that turns epoch-second columns into timestamptz ones, in place (migration 5).
private func timestamps(_ table: String, _ columns: [String]) -> String {
    "ALTER TABLE \(table) " + columns.map { "ALTER COLUMN \($0) TYPE timestamptz USING to_timestamp(\($0))" }.joined(separator: ", ")
}

/// Waiters wait until it is opened, once; from then on nobody waits.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func open() {
        let waiters = state.withLock { s in
            s.open = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for w in waiters { w.resume() }
    }

    func wait() async {
        if state.withLock({ $0.open }) { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.open { return true }
                s.waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}
