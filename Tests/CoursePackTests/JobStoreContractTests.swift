import Foundation
import GRDB
import LectureModel
import Logging
import Synchronization
import PostgresNIO
@testable import Server
import Testing

/// One contract for every job store: the same cases run against `SQLiteJobStore` and
/// `PostgresJobStore` directly, below the HTTP API and the runner, the way River's driver suite runs
/// every driver. A rule one store keeps and the other does not fails here by the store's name.
/// One case at a time: the cases time leases and retries, which a loaded machine must not stretch.
@Suite(.serialized) struct JobStoreContractTests {
    /// A fresh, empty store of `kind`: a SQLite file in a scratch folder, or a database of its own in
    /// the tests' PostgreSQL cluster.
    static func store(_ kind: StoreKind, _ name: String = #function) async throws -> any JobStore {
        switch kind {
        case .sqlite:
            return try SQLiteJobStore(path: try Support.scratch(name).appendingPathComponent("jobs.sqlite").path)
        case .postgres:
            var logger = Logger(label: "contract")
            logger.logLevel = .warning
            // psql blocks while it makes the database: on a thread of its own, not one of the pool's
            // (a starved pool stalls the store's own tasks past their deadline).
            let url = try await onOwnThread { Result { try PostgresCluster.get().createDatabase(name) } }.get()
            let store = try await PostgresJobStore.open(url: url, logger: logger, timeout: 120)
            running.withLock { $0[ObjectIdentifier(store)] = Task { await store.run() } }
            return store
        }
    }

    /// The PostgreSQL stores' `run()`, by store: a server or worker runs it in its service group;
    /// here each case's store runs until the case closes it.
    static let running = Mutex<[ObjectIdentifier: Task<Void, Never>]>([:])

    static func close(_ store: any JobStore) {
        guard let store = store as? PostgresJobStore else { return }
        running.withLock { $0.removeValue(forKey: ObjectIdentifier(store)) }?.cancel()
    }

    static func job(_ id: String, lecture: String? = nil, maxAttempts: Int = 3, callback: String? = nil, created: Date = Date()) -> Job {
        var job = Job(id: id, state: .queued, courseId: "c1", lectureId: lecture ?? id, title: nil, source: "/in/\(id).mp4", upload: nil,
                      preset: "lecture", captions: [], callbackUrl: callback, progress: 0, attempts: 0, createdAt: created,
                      updatedAt: created, startedAt: nil, finishedAt: nil, error: nil, package: nil, webhook: nil, lectureJSON: nil)
        job.spec = JobSpec(destination: "/out/c1/\(id)", preset: "{}", timeoutSeconds: nil, stallTimeoutSeconds: 60, memoryLimitMB: 1000,
                           maxAttempts: maxAttempts, retryBaseSeconds: 1)
        return job
    }

    /// Asks `body` every 200 ms until it returns something, for at most a minute.
    static func poll<T>(_ body: () async throws -> [T]) async throws -> [T] {
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let got = try await body()
            if !got.isEmpty { return got }
            try await Task.sleep(for: .milliseconds(200))
        }
        return []
    }

    static let lecture = Data(#"{"format":"coursepack-lecture/1"}"#.utf8)

    @Test(arguments: StoreKind.allCases)
    func aClaimedJobRunsOnceAndEndsWithItsToken(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        #expect(try await store.insert(Self.job("j1"), queueLimit: 10) == .inserted)
        let claim = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(claim.job.id == "j1" && claim.job.state == .running && claim.job.attempts == 1)
        #expect(claim.job.spec?.maxAttempts == 3, "the spec travels with the job")
        #expect(try await store.claim(worker: "w2", lease: 30) == nil, "a job under a live lease is claimed once")
        let beat = try await store.heartbeat("j1", token: claim.token, lease: 30, progress: 40)
        #expect(beat.owned && !beat.cancel)
        #expect(try await store.job("j1")?.progress == 40)
        #expect(try await store.fence("j1", token: claim.token, lease: 30, window: 10) == .owned)
        #expect(try await store.finish("j1", token: claim.token, .succeeded(package: "/out/c1/j1", lecture: Self.lecture)))
        let done = try #require(try await store.job("j1"))
        #expect(done.state == .succeeded && done.package == "/out/c1/j1" && done.progress == 100 && done.finishedAt != nil)
        #expect(done.lectureJSON == String(decoding: Self.lecture, as: UTF8.self))
        #expect(try await store.finish("j1", token: claim.token, .failed(.init(category: .internal, reason: "late"))) == false,
                "a finished run cannot end twice")
        #expect(try await store.job("j1")?.state == .succeeded)
        #expect(try await store.counts()[.succeeded] == 1)
    }

    /// Fencing: a run whose lease ran out and whose job another worker claimed changes nothing with
    /// its old token (heartbeat, fence, finish), and its result is not recorded.
    @Test(arguments: StoreKind.allCases)
    func aStaleTokenChangesNothing(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("j1"), queueLimit: 10)
        let old = try #require(try await store.claim(worker: "w1", lease: 0.3))
        try await Task.sleep(for: .milliseconds(600))
        // The lease ran out and nobody claimed the job yet: the run still cannot end it.
        #expect(try await store.fence("j1", token: old.token, lease: 30, window: 10) == .lost)
        #expect(try await store.finish("j1", token: old.token, .succeeded(package: "/out/old", lecture: Self.lecture)) == false)
        let new = try #require(try await store.claim(worker: "w2", lease: 30), "a lost lease is rescued")
        #expect(new.job.id == "j1" && new.job.attempts == 2 && new.token != old.token)
        #expect(try await store.heartbeat("j1", token: old.token, lease: 30, progress: 99).owned == false)
        #expect(try await store.fence("j1", token: old.token, lease: 30, window: 10) == .lost)
        #expect(try await store.finish("j1", token: old.token, .succeeded(package: "/out/old", lecture: Self.lecture)) == false)
        #expect(try await store.finish("j1", token: old.token, .retry(nil, delay: 0, countAttempt: false)) == false)
        let running = try #require(try await store.job("j1"))
        #expect(running.state == .running && running.package == nil && running.progress != 99, "\(running)")
        #expect(try await store.finish("j1", token: new.token, .succeeded(package: "/out/new", lecture: Self.lecture)))
        #expect(try await store.job("j1")?.package == "/out/new")
    }

    /// A job whose worker is lost more often than its spec allows fails, naming why, instead of
    /// being claimed again; a retry that does not count an attempt (a shutdown) does not use one up.
    @Test(arguments: StoreKind.allCases)
    func lostWorkersUseUpMaxAttempts(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("j1", maxAttempts: 2), queueLimit: 10)
        let first = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(try await store.finish("j1", token: first.token, .retry(nil, delay: 0, countAttempt: false)))
        #expect(try await store.job("j1")?.attempts == 0, "a shutdown's retry gives the attempt back")
        _ = try #require(try await store.claim(worker: "w1", lease: 0.2))
        try await Task.sleep(for: .milliseconds(400))
        _ = try #require(try await store.claim(worker: "w2", lease: 0.2), "the first loss is retried")
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await store.claim(worker: "w3", lease: 30) == nil, "the second loss ends the job")
        let failed = try #require(try await store.job("j1"))
        #expect(failed.state == .failed && failed.error?.category == .internal, "\(failed)")
        #expect(failed.error?.reason.contains("worker was lost 2 times") == true, "\(failed.error?.reason ?? "")")
    }

    /// A retry waits for its time; claims take the oldest runnable job first.
    @Test(arguments: StoreKind.allCases)
    func retriesWaitAndClaimsGoOldestFirst(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        let t0 = Date().addingTimeInterval(-10)  // a job is runnable from its creation time on
        _ = try await store.insert(Self.job("a", created: t0), queueLimit: 10)
        _ = try await store.insert(Self.job("b", created: t0.addingTimeInterval(1)), queueLimit: 10)
        let a = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(a.job.id == "a")
        let retried = Date()
        #expect(try await store.finish("a", token: a.token, .retry(.init(category: .crashed, reason: "killed"), delay: 4, countAttempt: true)))
        let queued = try #require(try await store.job("a"))
        #expect(queued.state == .queued && queued.error?.category == .crashed && queued.attempts == 1)
        if Date().timeIntervalSince(retried) < 3 {
            #expect(try await store.claim(worker: "w1", lease: 30)?.job.id == "b", "a waits for its retry time")
            if Date().timeIntervalSince(retried) < 3.5 { #expect(try await store.claim(worker: "w1", lease: 30) == nil) }
        }
        var again: Claim?
        while again == nil, Date().timeIntervalSince(retried) < 30 {
            try await Task.sleep(for: .milliseconds(200))
            // b, when a slow machine skipped the claims above, is not the one looked for.
            if let c = try await store.claim(worker: "w1", lease: 30), c.job.id != "b" { again = c }
        }
        #expect(again?.job.id == "a" && Date().timeIntervalSince(retried) >= 3.9, "a runs again once its retry time has come")
    }

    @Test(arguments: StoreKind.allCases)
    func theQueueLimitCountsWaitingJobs(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        #expect(try await store.insert(Self.job("a"), queueLimit: 2) == .inserted)
        #expect(try await store.insert(Self.job("b"), queueLimit: 2) == .inserted)
        #expect(try await store.insert(Self.job("c"), queueLimit: 2) == .queueFull)
        #expect(try await store.job("c") == nil, "a refused job leaves no row")
        _ = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(try await store.insert(Self.job("c"), queueLimit: 2) == .inserted, "a running job no longer waits")
        let counts = try await store.counts()
        #expect(counts[.queued] == 2 && counts[.running] == 1, "\(counts)")
    }

    /// A queued job is cancelled at once; a running one is asked, through its heartbeat and its
    /// fence, and ends cancelled; a cancel asked of a run that then dies still holds.
    @Test(arguments: StoreKind.allCases)
    func cancelHoldsWhereverTheJobIs(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("queued"), queueLimit: 10)
        #expect(try await store.requestCancel("queued") == .cancelled)
        #expect(try await store.job("queued")?.state == .cancelled)
        #expect(try await store.requestCancel("nope") == nil)

        _ = try await store.insert(Self.job("running"), queueLimit: 10)
        let run = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(try await store.requestCancel("running") == .running)
        #expect(try await store.heartbeat("running", token: run.token, lease: 30, progress: 10) == (owned: true, cancel: true))
        #expect(try await store.fence("running", token: run.token, lease: 30, window: 10) == .cancelRequested)
        #expect(try await store.finish("running", token: run.token, .cancelled))
        #expect(try await store.job("running")?.state == .cancelled)
        #expect(try await store.requestCancel("running") == .cancelled, "a final job stays as it is")

        _ = try await store.insert(Self.job("lost"), queueLimit: 10)
        _ = try #require(try await store.claim(worker: "w1", lease: 0.2))
        #expect(try await store.requestCancel("lost") == .running)
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await store.claim(worker: "w2", lease: 30) == nil, "the lost run's job is not run again")
        #expect(try await store.job("lost")?.state == .cancelled)
    }

    /// Another job of the same lecture placing now makes the fence answer busy; once a job submitted
    /// later has succeeded, an older one's fence says superseded.
    @Test(arguments: StoreKind.allCases)
    func oneLectureIsPlacedByOneJobAtATime(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        let t0 = Date().addingTimeInterval(-10)  // a job is runnable from its creation time on
        _ = try await store.insert(Self.job("old", lecture: "l1", created: t0), queueLimit: 10)
        _ = try await store.insert(Self.job("new", lecture: "l1", created: t0.addingTimeInterval(1)), queueLimit: 10)
        let old = try #require(try await store.claim(worker: "w1", lease: 30))
        let new = try #require(try await store.claim(worker: "w2", lease: 30))
        #expect(old.job.id == "old" && new.job.id == "new")
        #expect(try await store.fence("new", token: new.token, lease: 30, window: 10) == .owned)
        #expect(try await store.fence("old", token: old.token, lease: 30, window: 10) == .busy)
        #expect(try await store.finish("new", token: new.token, .succeeded(package: "/out/c1/l1", lecture: Self.lecture)))
        #expect(try await store.fence("old", token: old.token, lease: 30, window: 10) == .superseded(by: "new"))
        #expect(try await store.finish("old", token: old.token, .superseded(by: "new")))
        #expect(try await store.job("old")?.state == .superseded)
    }

    /// A finished job with a callback owes one webhook: claimed under a lease (not handed out twice
    /// meanwhile), then delivered, retried later, or failed for good.
    @Test(arguments: StoreKind.allCases)
    func webhooksAreLeasedOneDeliveryAtATime(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("hooked", callback: "https://lms.example/hook"), queueLimit: 10)
        _ = try await store.insert(Self.job("quiet"), queueLimit: 10)
        #expect(try await store.claimWebhooks(limit: 10, lease: 30).isEmpty, "nothing is owed before a job ends")
        for _ in 0..<2 {
            let c = try #require(try await store.claim(worker: "w1", lease: 30))
            #expect(try await store.finish(c.job.id, token: c.token, .failed(.init(category: .badInput, reason: "no video"))))
        }
        // Leases and retry times are checked against the clock, so a slow machine cannot fake them.
        let lease = 5.0
        let leased = Date()
        let owed = try await store.claimWebhooks(limit: 10, lease: lease)
        #expect(owed.map(\.id) == ["hooked"] && owed.first?.state == .failed)
        if Date().timeIntervalSince(leased) < lease - 1 {
            #expect(try await store.claimWebhooks(limit: 10, lease: 30).isEmpty, "a leased delivery is not handed out twice")
        }
        let again = try await Self.poll { try await store.claimWebhooks(limit: 10, lease: 30) }
        #expect(again.map(\.id) == ["hooked"] && Date().timeIntervalSince(leased) >= lease - 0.1, "a lost delivery is handed out again")
        let failedAt = Date()
        try await store.webhookResult("hooked", delivered: false, error: "HTTP 503", retryAfter: lease)
        #expect(try await store.job("hooked")?.webhook == Job.Webhook(state: "pending", attempts: 1, lastError: "HTTP 503"))
        if Date().timeIntervalSince(failedAt) < lease - 1 {
            #expect(try await store.claimWebhooks(limit: 10, lease: 30).isEmpty, "a retry waits for its time")
        }
        let retried = try await Self.poll { try await store.claimWebhooks(limit: 10, lease: 30) }
        #expect(retried.map(\.id) == ["hooked"] && Date().timeIntervalSince(failedAt) >= lease - 0.1)
        try await store.webhookResult("hooked", delivered: true, error: nil, retryAfter: nil)
        #expect(try await store.job("hooked")?.webhook?.state == "delivered")
        #expect(try await store.job("quiet")?.webhook == nil)
        try await Task.sleep(for: .milliseconds(400))
        #expect(try await store.claimWebhooks(limit: 10, lease: 30).isEmpty)
    }

    /// Typed state: both schemas refuse a state `Job.State` does not have, whoever writes the row.
    @Test(arguments: StoreKind.allCases)
    func theSchemaRefusesAnUnknownState(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("j1"), queueLimit: 10)
        await #expect(throws: (any Error).self) {
            switch store {
            case let s as SQLiteJobStore: try await s.db.write { try $0.execute(sql: "UPDATE job SET state = 'paused' WHERE id = 'j1'") }
            case let s as PostgresJobStore: try await s.client.query("UPDATE job SET state = 'paused' WHERE id = 'j1'")
            default: Issue.record("no raw access to \(type(of: store))")
            }
        }
        #expect(try await store.job("j1")?.state == .queued)
    }

    /// Every run is recorded with its worker and how it ended, failures with their category and
    /// reason; a failed job retried from the start runs again as if new.
    @Test(arguments: StoreKind.allCases)
    func runsAreRecordedAndFailedJobsCanBeRetried(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        _ = try await store.insert(Self.job("j1", callback: "https://lms.example/hook"), queueLimit: 10)
        #expect(try await store.retry("j1") == .queued, "a queued job stays queued")
        #expect(try await store.holders().isEmpty)
        let first = try #require(try await store.claim(worker: "w1", lease: 30))
        #expect(try await store.holders() == ["j1": "w1"], "the running job's open run names its worker")
        #expect(try await store.retry("j1") == .running, "a running job is not retried")
        #expect(try await store.finish("j1", token: first.token, .failed(.init(category: .badInput, reason: "no video stream"))))
        #expect(try await store.claimWebhooks(limit: 10, lease: 30).map(\.id) == ["j1"])
        #expect(try await store.retry("nope") == nil)
        #expect(try await store.retry("j1") == .queued)
        let queued = try #require(try await store.job("j1"))
        #expect(queued.state == .queued && queued.attempts == 0 && queued.finishedAt == nil && queued.webhook == nil, "\(queued)")
        #expect(queued.error?.reason == "no video stream", "the last failure stays until the next run ends")
        #expect(try await store.holders().isEmpty, "a failed job's ended run holds nothing")
        let second = try #require(try await store.claim(worker: "w2", lease: 30), "a retried job is claimed again")
        #expect(try await store.holders() == ["j1": "w2"], "the latest run, not the first")
        #expect(second.job.attempts == 1)
        #expect(try await store.finish("j1", token: second.token, .succeeded(package: "/out/c1/j1", lecture: Self.lecture)))
        #expect(try await store.retry("j1") == .succeeded, "a succeeded job is not retried")
        #expect(try await store.holders().isEmpty)
        let runs = try await store.runs(of: "j1")
        #expect(runs.map(\.worker) == ["w1", "w2"] && runs.map(\.outcome) == ["failed", "succeeded"], "\(runs)")
        #expect(runs.first?.failure == Job.Failure(category: .badInput, reason: "no video stream"))
        #expect(runs.last?.failure == nil && runs.allSatisfy { $0.ended != nil && $0.ended! >= $0.started })
        #expect(try await store.claimWebhooks(limit: 10, lease: 30).map(\.id) == ["j1"], "the new end owes its own webhook")
    }

    /// The latest changed jobs of some states, newest first.
    @Test(arguments: StoreKind.allCases)
    func recentJobsComeNewestFirst(store kind: StoreKind) async throws {
        let store = try await Self.store(kind)
        defer { Self.close(store) }
        let t0 = Date().addingTimeInterval(-10)
        for (i, id) in ["a", "b", "c"].enumerated() { _ = try await store.insert(Self.job(id, created: t0.addingTimeInterval(Double(i))), queueLimit: 10) }
        for id in ["a", "b"] {
            let c = try #require(try await store.claim(worker: "w1", lease: 30))
            #expect(c.job.id == id)
            try await Task.sleep(for: .milliseconds(20))
            #expect(try await store.finish(id, token: c.token, id == "a" ? .succeeded(package: "/p", lecture: Self.lecture)
                                                                  : .failed(.init(category: .badInput, reason: "x"))))
        }
        #expect(try await store.recent(states: [.succeeded, .failed], limit: 10).map(\.id) == ["b", "a"])
        #expect(try await store.recent(states: [.succeeded], limit: 10).map(\.id) == ["a"])
        #expect(try await store.recent(states: [.queued, .failed], limit: 2).map(\.id) == ["b", "c"], "b ended after c was submitted")
    }
}
