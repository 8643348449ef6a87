import Foundation
import Logging
@testable import Server
import Testing

/// A real `coursepack worker` with its own scratch folder, in a process group of its own (so are the
/// worker's own transcode children).
final class WorkerHarness: @unchecked Sendable {
    let name: String
    let log: URL
    let process: Child

    init(database: String, name: String, folder: URL, leaseSeconds: Double = 3, environment: [String: String] = [:]) throws {
        self.name = name
        log = folder.appendingPathComponent("worker-\(name).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process = try Child(Support.binary, ["worker", "--database", database, "--name", name, "--workers", "1",
                                             "--scratch", folder.appendingPathComponent("scratch-\(name)").path,
                                             "--lease-seconds", "\(leaseSeconds)", "--poll-seconds", "1", "--grace", "2"],
                            environment: env, stderr: .file(log))
    }

    deinit {
        if process.isRunning { kill(-process.pid, SIGKILL) }
        process.wait(timeout: 10)
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Sends `signal` to the process groups of the worker's whole tree (the worker and its transcode children).
    func signalGroup(_ signal: Int32) {
        for pid in [process.pid] + Self.descendants(of: process.pid) {
            let group = getpgid(pid)
            kill(group > 0 ? -group : pid, signal)
        }
    }

    /// Processes below `pid`, from /proc.
    static func descendants(of pid: Int32) -> [Int32] {
        var parents: [Int32: Int32] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let p = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
                  let close = stat.lastIndex(of: ")") else { continue }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 1, let ppid = Int32(fields[1]) { parents[p] = ppid }
        }
        var out: [Int32] = []
        var frontier = [pid]
        while let next = frontier.popLast() {
            let children = parents.filter { $0.value == next }.map(\.key)
            out += children
            frontier += children
        }
        return out
    }

    /// Waits until the worker has logged `text`.
    func waitForLog(_ text: String, timeout: Double = 30) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if logText.contains(text) { return true }
            usleep(100_000)
        }
        return false
    }
}

/// API servers and workers as separate processes sharing one PostgreSQL job store (issue: many
/// machines, one queue). Each test has a database of its own in the tests' cluster.
/// The PostgreSQL store's schema versions (PostgresJobStore.migrations).
enum PostgresJobStoreVersions { static let count = PostgresJobStore.migrations.count }

@Suite(.serialized) struct ScaleOutTests {
    /// Two servers (API only) on one database and one set of shared folders.
    static func servers(_ name: String, database: String) throws -> (ServerHarness, ServerHarness) {
        let a = try ServerHarness(name, store: .postgres, database: database, config: ["workers": 0])
        let b = try ServerHarness(name + "b", store: .postgres, database: database,
                                  config: ["workers": 0, "inputRoots": [a.inputs.path], "outputRoot": a.outputs.path,
                                           "dataDirectory": a.dir.appendingPathComponent("data").path])
        return (a, b)
    }

    /// Runs that held the same job at the same moment (by the store's run history).
    static func overlappingRuns(_ cluster: PostgresCluster, _ db: String) throws -> Int {
        Int(try cluster.sql("""
            SELECT count(*) FROM run a JOIN run b ON a.job_id = b.job_id AND a.token < b.token
            WHERE a.started < COALESCE(b.ended, 'infinity'::timestamptz) AND b.started < COALESCE(a.ended, 'infinity'::timestamptz)
            """, database: db).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
    }

    static func hidden(in root: URL) -> [String] {
        let all = FileManager.default.enumerator(atPath: root.path)?.compactMap { $0 as? String } ?? []
        return all.filter { $0.split(separator: "/").contains { $0.hasPrefix(".") } }
    }

    static func databaseName(_ url: String) -> String { String(url.split(separator: "/").last!) }

    /// An API-only server on a new database, a first worker whose run hangs (fault switch), and one
    /// job on it, running.
    static func hungJob(_ name: String, worker: String) async throws
        -> (cluster: PostgresCluster, url: String, db: String, server: ServerHarness, first: WorkerHarness, source: String, id: String) {
        let cluster = try PostgresCluster.get()
        let url = try cluster.createDatabase(name)
        let s = try ServerHarness(name, store: .postgres, database: url, config: ["workers": 0])
        try s.start()
        let first = try WorkerHarness(database: url, name: worker, folder: s.dir, environment: ["COURSEPACK_TEST_FAULT": "hang:long"])
        let source = try s.input("long.mp4")
        let id = try await s.submit(["source": source, "courseId": "c1", "lectureId": "long", "preset": "minimal"]).json["id"] as! String
        _ = try await s.waitForState(id, ["running"])
        return (cluster, url, databaseName(url), s, first, source, id)
    }

    @Test func sixtyJobsOnTwoServersAndThreeWorkersRunOnceEach() async throws {
        let cluster = try PostgresCluster.get()
        let url = try cluster.createDatabase("sixty")
        let db = Self.databaseName(url)
        let (a, b) = try Self.servers("sixty", database: url)
        try a.start()
        try b.start()
        let workers = try (1...3).map { try WorkerHarness(database: url, name: "w\($0)", folder: a.dir) }
        let source = try a.input("tiny.mp4", seconds: 1, size: "160x90")
        var ids: [String] = []
        for i in 0..<60 {
            let r = try await (i % 2 == 0 ? a : b).submit(["source": source, "courseId": "many", "lectureId": "l\(i)", "preset": "minimal"])
            #expect(r.status == 202, "\(r.json)")
            if let id = r.json["id"] as? String { ids.append(id) }
        }
        #expect(ids.count == 60)
        // Either server answers for any job.
        for (i, id) in ids.enumerated() {
            let job = try await (i % 2 == 0 ? b : a).waitForState(id, ["succeeded", "failed", "cancelled"], timeout: 300)
            #expect(job["state"] as? String == "succeeded", "\(job)")
        }
        let packages = try FileManager.default.contentsOfDirectory(atPath: a.outputs.appendingPathComponent("many").path)
        #expect(packages.sorted() == (0..<60).map { "l\($0)" }.sorted())
        #expect(Self.hidden(in: a.outputs).isEmpty, "\(Self.hidden(in: a.outputs))")
        #expect(try Self.overlappingRuns(cluster, db) == 0)
        let succeededRuns = try cluster.sql("SELECT count(*) FROM run WHERE outcome = 'succeeded'", database: db)
        #expect(succeededRuns.trimmingCharacters(in: .whitespacesAndNewlines) == "60")
        let busy = try cluster.sql("SELECT count(DISTINCT worker) FROM run", database: db).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect((Int(busy) ?? 0) >= 2, "only \(busy) worker ran jobs")

        // Workers report their counts with each heartbeat (every lease/3 s).
        var listed: [[String: Any]] = []
        for _ in 0..<50 {
            listed = try await b.request("GET", "/v1/workers").json["workers"] as? [[String: Any]] ?? []
            if listed.map({ $0["finished"] as? Int ?? 0 }).reduce(0, +) == 60 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        #expect(Set(listed.compactMap { $0["name"] as? String }) == ["w1", "w2", "w3"])
        #expect(listed.allSatisfy { $0["state"] as? String == "active" })
        #expect(listed.map { $0["finished"] as? Int ?? 0 }.reduce(0, +) == 60, "\(listed)")
        try ServerTests.schemaCheck("WorkerList", try JSONSerialization.jsonObject(with: try await b.request("GET", "/v1/workers").data))
        let metrics = String(decoding: try await a.request("GET", "/metrics").data, as: UTF8.self)
        #expect(metrics.contains(#"coursepack_workers{state="active"} 3"#), "\(metrics.prefix(2000))")
        for w in workers { w.signalGroup(SIGTERM) }
        for w in workers { w.process.wait() }
        #expect(workers.allSatisfy { $0.process.status == 0 }, "\(workers.map(\.logText))")
    }

    @Test func killedWorkerGroupsJobIsRunAgainElsewhere() async throws {
        // The first worker's run hangs, so it is surely killed in the middle of it.
        let (cluster, url, db, s, first, source, id) = try await Self.hungJob("killed", worker: "first")
        let second = try WorkerHarness(database: url, name: "second", folder: s.dir)
        try await Task.sleep(for: .milliseconds(500))
        first.signalGroup(SIGKILL)
        first.process.wait()
        for _ in 0..<20 where !BatchTests.processes(mentioning: source).isEmpty { usleep(100_000) }
        #expect(BatchTests.processes(mentioning: source).isEmpty, "the killed worker's child lives on")

        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 60)
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(second.logText)")
        #expect(job["attempts"] as? Int == 2)
        let runs = try cluster.sql("SELECT worker, outcome FROM run ORDER BY started", database: db)
            .split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
        #expect(runs.count == 2 && runs[0][0].hasPrefix("first-") && runs[0][1] == "lease expired"
                && runs[1][0].hasPrefix("second-") && runs[1][1] == "succeeded", "\(runs)")
        #expect(try Self.overlappingRuns(cluster, db) == 0)
        #expect(Self.hidden(in: s.outputs).isEmpty, "\(Self.hidden(in: s.outputs))")
        #expect(try Support.coursepack("validate", job["package"] as! String, "--no-decode").status == 0)
        let listed = try await s.request("GET", "/v1/workers").json["workers"] as? [[String: Any]] ?? []
        #expect(listed.first { $0["name"] as? String == "first" }?["state"] as? String == "lost", "\(listed)")
        #expect(listed.first { $0["name"] as? String == "second" }?["state"] as? String == "active", "\(listed)")
    }

    @Test func pausedWorkerLosesItsLeaseAndPublishesNothing() async throws {
        let (cluster, url, db, s, paused, source, id) = try await Self.hungJob("paused", worker: "paused")
        paused.signalGroup(SIGSTOP)
        let other = try WorkerHarness(database: url, name: "other", folder: s.dir)
        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 60)
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(other.logText)")
        let package = s.outputs.appendingPathComponent("c1/long")
        let before = try FileManager.default.attributesOfItem(atPath: package.path)[.systemFileNumber] as? Int

        paused.signalGroup(SIGCONT)
        #expect(paused.waitForLog("lost its lease"), "\(paused.logText)")
        for _ in 0..<50 where !BatchTests.processes(mentioning: source).isEmpty { usleep(100_000) }
        #expect(BatchTests.processes(mentioning: source).isEmpty, "the paused worker's run goes on")
        let after = try FileManager.default.attributesOfItem(atPath: package.path)[.systemFileNumber] as? Int
        #expect(before != nil && before == after, "the package was replaced after the paused worker woke")
        #expect(Self.hidden(in: s.outputs).isEmpty, "\(Self.hidden(in: s.outputs))")
        let final = try await s.request("GET", "/v1/jobs/\(id)").json
        #expect(final["state"] as? String == "succeeded" && final["attempts"] as? Int == 2, "\(final)")
        #expect(try Self.overlappingRuns(cluster, db) == 0)
        let outcomes = try cluster.sql("SELECT outcome FROM run ORDER BY started", database: db).split(separator: "\n")
        #expect(outcomes == ["lease expired", "succeeded"], "\(outcomes)")
    }

    @Test func jobsEndOnceAcrossADatabaseRestart() async throws {
        let cluster = try PostgresCluster.dedicated()
        defer { try? cluster.stop() }
        let url = try cluster.createDatabase("restart")
        let db = Self.databaseName(url)
        let s = try ServerHarness(store: .postgres, database: url, config: ["workers": 0])
        try s.start()
        let workers = try (1...2).map { try WorkerHarness(database: url, name: "r\($0)", folder: s.dir, leaseSeconds: 5) }
        let source = try s.input("clip.mp4", seconds: 3)
        var ids: [String] = []
        for i in 0..<8 {
            ids.append(try await s.submit(["source": source, "courseId": "c1", "lectureId": "l\(i)", "preset": "minimal"]).json["id"] as! String)
        }
        _ = try await s.waitForState(ids[0], ["running", "succeeded"])
        try cluster.stop()
        try await Task.sleep(for: .seconds(2))
        try cluster.start()
        for id in ids {
            let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 120)
            #expect(job["state"] as? String == "succeeded", "\(job)\n\(workers.map(\.logText).joined())")
        }
        let perJob = try cluster.sql("SELECT count(*) FROM run WHERE outcome = 'succeeded' GROUP BY job_id", database: db)
            .split(separator: "\n")
        #expect(perJob.count == 8 && perJob.allSatisfy { $0 == "1" }, "\(perJob)")
        #expect(try Self.overlappingRuns(cluster, db) == 0)
        // A run that lost its job in the outage may still be ending (its fence waits on the store)
        // after another run finished the job; its staged copy must be gone once it has.
        #expect(FaultTests.eventually(timeout: 90) { Self.hidden(in: s.outputs).isEmpty }, "\(Self.hidden(in: s.outputs))")
        let listed = try await s.request("GET", "/v1/workers").json["workers"] as? [[String: Any]] ?? []
        #expect(listed.count == 2 && listed.allSatisfy { $0["state"] as? String == "active" }, "\(listed)")
    }

    @Test func processesStartingTogetherMigrateOnce() async throws {
        let cluster = try PostgresCluster.get()
        let url = try cluster.createDatabase("together")
        let folder = try Support.scratch()
        let workers = try (1...4).map { try WorkerHarness(database: url, name: "t\($0)", folder: folder) }
        for w in workers { #expect(w.waitForLog("running 1 at once"), "\(w.logText)") }
        let applied = try cluster.sql("SELECT count(*) FROM coursepack_migration", database: Self.databaseName(url))
        // Each schema version applied once, by one of the four.
        let versions = PostgresJobStoreVersions.count
        #expect(applied.trimmingCharacters(in: .whitespacesAndNewlines) == "\(versions)")
        for v in 1...versions {
            #expect(workers.map(\.logText).filter { $0.contains("schema version \(v) applied") }.count == 1)
        }
        for w in workers { w.signalGroup(SIGTERM) }
        for w in workers { w.process.wait() }
    }

    /// A database made by versions 1-4 (times as float8 epoch seconds) keeps every time through
    /// version 5's conversion to timestamptz: the store then reads the same instants back.
    @Test func aVersionFourDatabaseKeepsItsTimesThroughTheUpgrade() async throws {
        let cluster = try PostgresCluster.get()
        let url = try cluster.createDatabase("upgrade")
        let db = Self.databaseName(url)
        try cluster.sql("CREATE TABLE coursepack_migration (version bigint PRIMARY KEY, applied float8 NOT NULL)", database: db)
        for m in PostgresJobStore.migrations where m.version <= 4 {
            for statement in m.sql { try cluster.sql(statement, database: db) }
            try cluster.sql("INSERT INTO coursepack_migration VALUES (\(m.version), 1700000000)", database: db)
        }
        let created = 1_700_000_000.25, started = 1_700_000_100.5, ended = 1_700_000_160.75
        try cluster.sql("""
            INSERT INTO job (id, state, course_id, lecture_id, source, preset, captions, not_before, created, updated, started, finished)
            VALUES ('j1', 'succeeded', 'c1', 'l1', '/in/a.mp4', 'lecture', '[]', \(created), \(created), \(ended), \(started), \(ended));
            INSERT INTO run (job_id, worker, token, started, ended, outcome) VALUES ('j1', 'w1', 't1', \(started), \(ended), 'succeeded');
            """, database: db)
        var logger = Logger(label: "upgrade")
        logger.logLevel = .warning
        let store = try await PostgresJobStore.open(url: url, logger: logger, timeout: 60)
        let running = Task { await store.run() }
        defer { running.cancel() }
        let job = try #require(try await store.job("j1"))
        #expect(job.createdAt == Date(timeIntervalSince1970: created) && job.startedAt == Date(timeIntervalSince1970: started)
                && job.finishedAt == Date(timeIntervalSince1970: ended), "\(job)")
        let runs = try await store.runs(of: "j1")
        #expect(runs.count == 1 && runs.first?.started == Date(timeIntervalSince1970: started)
                && runs.first?.ended == Date(timeIntervalSince1970: ended), "\(runs)")
        let types = try cluster.sql("""
            SELECT DISTINCT data_type FROM information_schema.columns
            WHERE table_name IN ('job', 'run', 'upload', 'worker', 'coursepack_migration')
              AND column_name IN ('not_before', 'lease_expires', 'created', 'updated', 'started', 'finished', 'webhook_next',
                                  'placing_until', 'ended', 'last_seen', 'applied')
              AND NOT (table_name = 'worker' AND column_name = 'finished')  -- a count
            """, database: db)
        #expect(types.trimmingCharacters(in: .whitespacesAndNewlines) == "timestamp with time zone", "\(types)")
        // The upgraded schema still works: a job submitted now is claimed now.
        var fresh = JobStoreContractTests.job("j2")
        fresh.createdAt = Date()
        #expect(try await store.insert(fresh, queueLimit: 10) == .inserted)
        let claim = try #require(try await store.claim(worker: "w2", lease: 30))
        #expect(claim.job.id == "j2" && abs(claim.job.startedAt?.timeIntervalSinceNow ?? 99) < 30)
    }

    @Test func unreachableDatabaseIsOneLineAndAnExit() async throws {
        let port = try PostgresCluster.freePort()
        let url = "postgres://coursepack@127.0.0.1:\(port)/nowhere"
        // Connection refused is tried again for 10 s (a database may be starting), then reported.
        var started = Date()
        let w = try Support.run(Support.binary, ["worker", "--database", url, "--scratch", try Support.scratch().path])
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(w.status == 64)
        let lines = w.stderr.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains(url) && lines[0].contains("cannot use the database"), "\(w.stderr)")

        let s = try ServerHarness(store: .postgres, database: url, config: [:])
        try JSONSerialization.data(withJSONObject: ["inputRoots": [s.inputs.path], "database": url]).write(to: s.dir.appendingPathComponent("c.json"))
        started = Date()
        let r = try Support.run(Support.binary, ["serve", "--config", s.dir.appendingPathComponent("c.json").path],
                                environment: ProcessInfo.processInfo.environment.merging(["COURSEPACK_API_TOKEN": s.token]) { $1 })
        #expect(r.status == 64)
        #expect(r.stderr.split(separator: "\n").last?.contains("cannot use the database") == true, "\(r.stderr)")
        #expect(Date().timeIntervalSince(started) < 20)
        // No password in messages; an answer from the server (no such role) ends the wait at once.
        started = Date()
        let role = try Support.run(Support.binary, ["worker", "--database", try PostgresCluster.get().url("postgres").replacingOccurrences(of: "coursepack@", with: "nobody@")])
        #expect(role.status == 64 && role.stderr.contains("role \"nobody\" does not exist"), "\(role.stderr)")
        #expect(Date().timeIntervalSince(started) < 5)
        let secret = try Support.run(Support.binary, ["worker", "--database", "postgres://u:hunter2@127.0.0.1:\(port)/x"])
        #expect(!secret.stderr.contains("hunter2") && secret.status == 64, "\(secret.stderr)")
    }
}
