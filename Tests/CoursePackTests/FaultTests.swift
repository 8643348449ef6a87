import Foundation
import Testing

/// Faults the job server must survive (docs/SERVER.md, "Failures"): the database cut while a run
/// places its package, kill -9 at every placing step, sources changed after submission, webhook
/// targets on the server's own network, a cancel whose runner died, two jobs for one lecture, and a
/// store that stops answering.
@Suite(.serialized) struct FaultTests {
    /// The source file name recorded in the lecture.json published at c1/LECTURE.
    static func publishedSource(_ s: ServerHarness, _ lecture: String) -> String? {
        let url = s.outputs.appendingPathComponent("c1/\(lecture)/lecture.json")
        guard let d = try? Data(contentsOf: url), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] else { return nil }
        return (o["source"] as? [String: Any])?["path"] as? String
    }

    static func eventually(timeout: Double = 60, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition() { return true }
            usleep(100_000)
        }
        return false
    }

    static func error(_ job: [String: Any]) -> (category: String, reason: String) {
        let e = job["error"] as? [String: Any] ?? [:]
        return (e["category"] as? String ?? "", e["reason"] as? String ?? "")
    }

    @Test func databaseCutWhilePlacingEndsTheRunAndTheWorkerGoesOn() async throws {
        let cluster = try PostgresCluster.get()
        let url = try cluster.createDatabase("cutplacing")
        let db = ScaleOutTests.databaseName(url)
        let s = try ServerHarness(store: .postgres, database: url, config: ["workers": 0])
        try s.start()
        let w = try WorkerHarness(database: url, name: "cut", folder: s.dir, environment: ["COURSEPACK_TEST_PAUSE": "before-place:2"])
        let first = try await s.submit(["source": try s.input("cut.mp4"), "courseId": "c1", "lectureId": "cut", "preset": "minimal"])
        let id = first.json["id"] as! String
        #expect(w.waitForLog("test pause at before-place", timeout: 60), "\(w.logText)")
        // Every connection to the job database but psql's own: the worker's pool and listener, the server's.
        _ = try cluster.sql("""
            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '\(db)' AND pid <> pg_backend_pid()
            """)
        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 90)
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(w.logText)")
        // The worker is not wedged: it takes and finishes the next job.
        let next = try await s.submit(["source": try s.input("next.mp4", seconds: 2), "courseId": "c1", "lectureId": "next", "preset": "minimal"])
        let after = try await s.waitForState(next.json["id"] as! String, ["succeeded", "failed"], timeout: 90)
        #expect(after["state"] as? String == "succeeded", "\(after)\n\(w.logText)")
        #expect(try Support.coursepack("validate", s.outputs.appendingPathComponent("c1/cut").path, "--no-decode").status == 0)
        #expect(try ScaleOutTests.overlappingRuns(cluster, db) == 0)
        #expect(Self.eventually { ScaleOutTests.hidden(in: s.outputs).isEmpty }, "\(ScaleOutTests.hidden(in: s.outputs))")
        // SIGTERM ends it within its grace (2 s) and a little.
        let asked = Date()
        w.process.send(SIGTERM)
        w.process.wait(timeout: 20)
        #expect(!w.process.isRunning && Date().timeIntervalSince(asked) < 10, "\(w.logText)")
    }

    /// Kill -9 of the server while its run is at each placing step (the file system's atomic exchange,
    /// and the two renames of a file system without one): the published lecture is never half, the
    /// next start removes or restores every hidden leftover, and the job ends with its own package.
    @Test(arguments: [(StoreKind.sqlite, "before-place"), (.sqlite, "before-exchange"), (.sqlite, "after-place"),
                      (.sqlite, "between-renames"), (.postgres, "before-exchange"), (.postgres, "between-renames")])
    func killAtAPlacingStepLeavesAWholePackage(store: StoreKind, point: String) async throws {
        let s = try ServerHarness("kill-\(point)-\(store)", store: store, config: ["workers": 1])
        try s.start()
        let first = try await s.submit(["source": try s.input("first.mp4", seconds: 2), "courseId": "c1", "lectureId": "k", "preset": "minimal"])
        _ = try await s.waitForState(first.json["id"] as! String, ["succeeded"])
        #expect(Self.publishedSource(s, "k") == "first.mp4")
        _ = s.terminate()

        var env = ["COURSEPACK_TEST_PAUSE": "\(point):60"]
        if point == "between-renames" { env["COURSEPACK_TEST_NO_EXCHANGE"] = "1" }
        try s.start(environment: env)
        let second = try await s.submit(["source": try s.input("second.mp4", seconds: 3), "courseId": "c1", "lectureId": "k", "preset": "minimal"])
        let id = second.json["id"] as! String
        #expect(Self.eventually { s.logText.contains("test pause at \(point)") }, "\(s.logText)")
        s.kill9()
        let package = s.outputs.appendingPathComponent("c1/k")
        if point != "between-renames" {
            // Never a missing or half lecture: the old package, or (killed after the exchange) the new one.
            let published = Self.publishedSource(s, "k")
            #expect(published == (point == "after-place" ? "second.mp4" : "first.mp4"), "\(String(describing: published))")
            #expect(try Support.coursepack("validate", package.path, "--no-decode").status == 0)
        }
        try s.start(environment: ["COURSEPACK_TEST_PAUSE": ""])
        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 120)
        #expect(job["state"] as? String == "succeeded", "\(job)\n\(s.logText)")
        #expect(Self.publishedSource(s, "k") == "second.mp4")
        #expect(try Support.coursepack("validate", package.path, "--no-decode").status == 0)
        #expect(Self.eventually(timeout: 20) { ScaleOutTests.hidden(in: s.outputs).isEmpty }, "\(ScaleOutTests.hidden(in: s.outputs))")
    }

    /// A queued job's source replaced by a symbolic link out of the input roots, or by a FIFO, is
    /// refused when the job runs, at once and with the reason; a FIFO is refused at submission too.
    @Test(arguments: StoreKind.allCases) func sourcesAreCheckedAgainWhenTheJobRuns(store: StoreKind) async throws {
        // One lecture at a time, and the first hangs (fault switch), so the others wait in the queue.
        let s = try ServerHarness(store: store, config: ["workers": 1], environment: ["COURSEPACK_TEST_FAULT": "hang:blocker"])
        try s.start()
        let fifo = s.inputs.appendingPathComponent("pipe-at-submission.mp4").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let refused = try await s.submit(["source": fifo, "courseId": "c1", "lectureId": "fifo", "preset": "minimal"])
        #expect(refused.status == 400 && String(decoding: refused.data, as: UTF8.self).contains("FIFO"),
                "\(refused.status) \(String(decoding: refused.data, as: UTF8.self))")

        let blocker = try await s.submit(["source": try s.input("blocker.mp4", seconds: 2), "courseId": "c1", "lectureId": "blocker", "preset": "minimal"])
        let blockerID = blocker.json["id"] as! String
        _ = try await s.waitForState(blockerID, ["running"])
        let outside = s.dir.appendingPathComponent("outside.mp4")
        try FileManager.default.copyItem(atPath: try BatchTests.clip(seconds: 2), toPath: outside.path)
        var ids: [String: String] = [:]
        for name in ["swapped", "piped", "fine"] {
            let r = try await s.submit(["source": try s.input("\(name).mp4", seconds: 2), "courseId": "c1", "lectureId": name, "preset": "minimal"])
            #expect(r.status == 202)
            ids[name] = r.json["id"] as? String
        }
        let swapped = s.inputs.appendingPathComponent("swapped.mp4").path
        try FileManager.default.removeItem(atPath: swapped)
        try FileManager.default.createSymbolicLink(atPath: swapped, withDestinationPath: outside.path)
        let piped = s.inputs.appendingPathComponent("piped.mp4").path
        try FileManager.default.removeItem(atPath: piped)
        #expect(mkfifo(piped, 0o600) == 0)
        _ = try await s.request("DELETE", "/v1/jobs/\(blockerID)")

        let link = try await s.waitForState(ids["swapped"]!, ["succeeded", "failed"], timeout: 60)
        #expect(link["state"] as? String == "failed" && Self.error(link).category == "badInput"
                && Self.error(link).reason.contains("symbolic link"), "\(link)")
        #expect(!FileManager.default.fileExists(atPath: s.outputs.appendingPathComponent("c1/swapped").path))
        let pipe = try await s.waitForState(ids["piped"]!, ["succeeded", "failed"], timeout: 60)
        #expect(pipe["state"] as? String == "failed" && Self.error(pipe).reason.contains("FIFO"), "\(pipe)")
        let fine = try await s.waitForState(ids["fine"]!, ["succeeded", "failed"], timeout: 60)
        #expect(fine["state"] as? String == "succeeded", "\(fine)")
    }

    /// Callback URLs that reach the server's own network are refused; an allowed receiver's redirect
    /// is not followed; a closed port and a listener that hangs up read the same.
    @Test func webhookTargetsOnTheServersNetworkAreRefused() async throws {
        let s = try ServerHarness(config: ["webhookAllowedHosts": ["127.0.0.1"], "webhookAttempts": 1])
        try s.start()
        let source = try s.input("hook.mp4", seconds: 2)
        for target in ["http://169.254.169.254/latest/meta-data/", "http://10.1.2.3/hook", "http://172.16.0.5/hook",
                       "http://192.168.1.10/hook", "http://100.64.0.1/hook", "http://127.0.0.2:8080/hook", "http://localhost:8080/hook",
                       "http://[::1]:8080/hook", "http://[::ffff:127.0.0.1]/hook", "http://[fe80::1]/hook", "http://[fd00::5]/hook",
                       "http://224.0.0.1/hook", "http://0.0.0.0:8080/hook", "https://2130706433/hook"] {
            let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": "hook", "preset": "minimal", "callbackUrl": target])
            #expect(r.status == 400 && String(decoding: r.data, as: UTF8.self).contains("callbackUrl"),
                    "\(target): \(r.status) \(String(decoding: r.data, as: UTF8.self))")
        }

        // 127.0.0.1 is allowed here: a receiver there that redirects elsewhere is not followed.
        let receiverPort = try PostgresCluster.freePort()
        let received = s.dir.appendingPathComponent("received.jsonl")
        let receiver = try Child("python3", [Support.repoRoot.appendingPathComponent("Tests/server/receiver.py").path, "\(receiverPort)", received.path])
        defer { receiver.send(SIGKILL); receiver.wait() }
        let redirectPort = try PostgresCluster.freePort()
        let redirector = try Child("python3", [Support.repoRoot.appendingPathComponent("Tests/server/redirector.py").path, "\(redirectPort)",
                                               "http://127.0.0.1:\(receiverPort)/hook"])
        defer { redirector.send(SIGKILL); redirector.wait() }
        // A listener that accepts and hangs up at once.
        let hangUpPort = try PostgresCluster.freePort()
        let hangUp = try Child("python3", ["-c", """
            import socket
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", \(hangUpPort))); s.listen(8)
            while True:
                c, _ = s.accept(); c.close()
            """])
        defer { hangUp.send(SIGKILL); hangUp.wait() }
        let closedPort = try PostgresCluster.freePort()
        usleep(500_000)

        var errors: [String: String] = [:]
        for (name, port) in [("redirect", redirectPort), ("hangup", hangUpPort), ("closed", closedPort)] {
            let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": name, "preset": "minimal",
                                        "callbackUrl": "http://127.0.0.1:\(port)/hook"])
            #expect(r.status == 202, "\(name): \(r.status) \(String(decoding: r.data, as: UTF8.self))")
            let job = try await s.wait(r.json["id"] as! String, timeout: 90) { ($0["webhook"] as? [String: Any])?["state"] as? String == "failed" }
            errors[name] = (job["webhook"] as? [String: Any])?["lastError"] as? String ?? "?"
        }
        #expect(errors["redirect"] == "receiver answered 307", "\(errors)")
        #expect(((try? String(contentsOf: received, encoding: .utf8)) ?? "").isEmpty, "the redirect was followed")
        #expect(errors["hangup"] == errors["closed"] && errors["closed"] == "no HTTP answer from the receiver", "\(errors)")
    }

    /// DELETE answered 202 for a running job whose runner then died before it saw the request: the
    /// job ends cancelled and nothing is published.
    @Test func cancelSurvivesADeadRunner() async throws {
        let (cluster, url, db, s, first, _, id) = try await ScaleOutTests.hungJob("lostcancel", worker: "first")
        first.signalGroup(SIGSTOP)
        let cancel = try await s.request("DELETE", "/v1/jobs/\(id)")
        #expect(cancel.status == 202, "\(cancel.status)")
        first.signalGroup(SIGKILL)
        first.process.wait()
        let second = try WorkerHarness(database: url, name: "second", folder: s.dir)
        let job = try await s.waitForState(id, ["succeeded", "failed", "cancelled"], timeout: 60)
        #expect(job["state"] as? String == "cancelled", "\(job)\n\(second.logText)")
        try await Task.sleep(for: .seconds(2))
        #expect(try await s.request("GET", "/v1/jobs/\(id)").json["state"] as? String == "cancelled")
        #expect(!FileManager.default.fileExists(atPath: s.outputs.appendingPathComponent("c1/long").path))
        let outcomes = try cluster.sql("SELECT outcome FROM run ORDER BY started", database: db).split(separator: "\n")
        // The dead run ended when its lease ran out; no run came after it.
        #expect(outcomes == ["lease expired"], "\(outcomes)")
    }

    /// Two jobs for one lecture: the one submitted later wins, whichever ends last.
    @Test(arguments: StoreKind.allCases) func aNewerJobForALectureSupersedesAnOlderOne(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["workers": 2])
        try s.start()
        let older = try await s.submit(["source": try s.input("older.mp4", seconds: 40), "courseId": "c1", "lectureId": "same", "preset": "minimal"])
        let olderID = older.json["id"] as! String
        _ = try await s.waitForState(olderID, ["running"])
        let newer = try await s.submit(["source": try s.input("newer.mp4", seconds: 2), "courseId": "c1", "lectureId": "same", "preset": "minimal"])
        let newerID = newer.json["id"] as! String
        let n = try await s.waitForState(newerID, ["succeeded", "failed"])
        #expect(n["state"] as? String == "succeeded", "\(n)")
        let o = try await s.waitForState(olderID, ["succeeded", "failed", "superseded"], timeout: 120)
        #expect(o["state"] as? String == "superseded" && Self.error(o).reason.contains(newerID), "\(o)")
        #expect(Self.publishedSource(s, "same") == "newer.mp4")
        #expect(Self.eventually(timeout: 20) { ScaleOutTests.hidden(in: s.outputs).isEmpty }, "\(ScaleOutTests.hidden(in: s.outputs))")
        let listed = try await s.request("GET", "/v1/jobs?state=superseded").json["jobs"] as? [[String: Any]] ?? []
        #expect(listed.map { $0["id"] as? String } == [olderID])
    }

    /// A placing step that does not return (a hung file system, here a pause before the rename)
    /// stops the worker's heartbeats, so the worker shows as lost while it is stuck and active again
    /// once the step ends.
    @Test func aStuckPlacingStepShowsTheWorkerLost() async throws {
        let s = try ServerHarness(config: ["workers": 1, "leaseSeconds": 2],
                                  environment: ["COURSEPACK_TEST_PAUSE": "before-place:20", "COURSEPACK_TEST_STUCK_SECONDS": "3"])
        try s.start()
        let id = try await s.submit(["source": try s.input("clip.mp4", seconds: 2), "courseId": "c1", "lectureId": "l1", "preset": "minimal"])
            .json["id"] as! String
        func workerState() async throws -> String? {
            (try await s.request("GET", "/v1/workers").json["workers"] as? [[String: Any]])?.first?["state"] as? String
        }
        #expect(try await workerState() == "active")
        var lost = false
        for _ in 0..<60 where !lost {
            lost = try await workerState() == "lost"
            if !lost { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(lost && s.logText.contains("test pause at before-place"), "\(s.logText)")
        #expect(s.logText.contains("heartbeats stop"), "\(s.logText)")
        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 60)
        #expect(job["state"] as? String == "succeeded", "\(job)")
        var active = false
        for _ in 0..<40 where !active {
            active = try await workerState() == "active"
            if !active { try await Task.sleep(for: .milliseconds(250)) }
        }
        #expect(active, "the worker stayed lost after its step ended")
    }

    /// A disk that fills up, the scratch disk where the package is made or the output disk it is
    /// copied to, fails the job once (not retried: another run meets the same disk), with a reason
    /// that names the disk, and leaves nothing on it.
    @Test(arguments: ["scratchDirectory", "outputRoot"]) func aFullDiskIsOneFailureNamingTheDisk(folder: String) async throws {
        let base = try Support.scratch()
        let disk = base.appendingPathComponent("small-disk")
        try FileManager.default.createDirectory(at: disk, withIntermediateDirectories: true)
        let mounted = try Support.run("/bin/mount", ["-t", "tmpfs", "-o", "size=600k", "tmpfs", disk.path])
        try #require(mounted.status == 0, "mounting a small disk (needs root): \(mounted.stderr)")
        defer { _ = try? Support.run("/bin/umount", ["-l", disk.path]) }
        let s = try ServerHarness(config: [folder: disk.path, "maxAttempts": 3])
        try s.start()
        let id = try await s.submit(["source": try s.input("clip.mp4", seconds: 6, size: "1280x720"), "courseId": "c1", "lectureId": "l1",
                                     "preset": "minimal"]).json["id"] as! String
        let job = try await s.waitForState(id, ["succeeded", "failed"])
        let e = Self.error(job)
        #expect(job["state"] as? String == "failed" && job["attempts"] as? Int == 1, "\(job)\n\(s.logText)")
        #expect(e.category == "diskFull" && e.reason.contains("disk full: the disk mounted at \(disk.path) ("), "\(e)")
        #expect(!s.logText.contains("queued again"), "\(s.logText)")
        // Nothing of the package stays: only the runner's lock and its source-hash cache.
        func left() -> [String] {
            (FileManager.default.enumerator(atPath: disk.path)?.compactMap { $0 as? String } ?? []).filter { path in
                var isFolder: ObjCBool = false
                FileManager.default.fileExists(atPath: disk.appendingPathComponent(path).path, isDirectory: &isFolder)
                return !isFolder.boolValue && !path.hasSuffix("/.lock") && path != "sources.json"
            }
        }
        #expect(Self.eventually(timeout: 20) { left().isEmpty }, "\(left())")
    }

    /// A store that stops answering (PostgreSQL's processes stopped) makes /healthz answer 503 within
    /// about 2 s, and 200 again once it is back.
    @Test func healthAnswers503WhenTheStoreDoesNotAnswer() async throws {
        let cluster = try PostgresCluster.dedicated()
        defer { try? cluster.stop() }
        let url = try cluster.createDatabase("health")
        let s = try ServerHarness(store: .postgres, database: url, config: ["workers": 0])
        try s.start()
        #expect(try await s.request("GET", "/healthz", auth: nil).status == 200)
        let pidFile = cluster.folder.appendingPathComponent("data/postmaster.pid")
        let postmaster = Int32(try String(contentsOf: pidFile, encoding: .utf8).split(separator: "\n").first ?? "") ?? 0
        #expect(postmaster > 0)
        let all = [postmaster] + WorkerHarness.descendants(of: postmaster)
        for p in all { kill(p, SIGSTOP) }
        let asked = Date()
        let stopped = try await s.request("GET", "/healthz", auth: nil)
        let took = Date().timeIntervalSince(asked)
        for p in all { kill(p, SIGCONT) }
        #expect(stopped.status == 503 && took < 4, "\(stopped.status) after \(took) s")
        var back = false
        for _ in 0..<60 where !back {
            back = (try? await s.request("GET", "/healthz", auth: nil).status) == 200
            if !back { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(back, "/healthz did not answer 200 after the store came back")
    }
}
