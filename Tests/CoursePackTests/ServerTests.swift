import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Server
import Testing

/// The job stores the server suite runs on.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }
}

/// A real `coursepack serve` on loopback with its own folders, store (SQLite, or a database of its
/// own in the tests' PostgreSQL cluster) and token.
final class ServerHarness: @unchecked Sendable {
    let dir: URL
    let inputs: URL
    let outputs: URL
    let token = "test-token-0123456789abcdef"
    private var config: [String: Any]
    private let environment: [String: String]
    private(set) var process: Child?
    private(set) var port = 0
    private var log: URL
    private var starts = 0

    let store: StoreKind

    init(_ name: String = #function, store: StoreKind = .sqlite, database: String? = nil, config extra: [String: Any] = [:],
         environment: [String: String] = [:]) throws {
        self.store = store
        dir = try Support.scratch(name)
        inputs = dir.appendingPathComponent("in")
        outputs = dir.appendingPathComponent("out")
        log = dir.appendingPathComponent("server-0.log")
        try FileManager.default.createDirectory(at: inputs, withIntermediateDirectories: true)
        _ = try Support.testPreset()
        config = ["port": 0, "inputRoots": [inputs.path], "outputRoot": outputs.path, "dataDirectory": dir.appendingPathComponent("data").path,
                  "workers": 2, "presets": ["test-ladder", "minimal"], "leaseSeconds": 3, "retryBaseSeconds": 0.2,
                  "webhookRetryBaseSeconds": 0.3, "shutdownGraceSeconds": 10, "stallTimeoutSeconds": 60]
        if store == .postgres { config["database"] = try database ?? PostgresCluster.get().createDatabase(name) }
        config.merge(extra) { $1 }
        self.environment = environment
    }

    deinit {
        process?.send(SIGKILL)
        process?.wait(timeout: 10)
    }

    /// A copy of a fixture clip among the inputs.
    func input(_ name: String, seconds: Int = 4, size: String = "320x180") throws -> String {
        let path = inputs.appendingPathComponent(name).path
        if !FileManager.default.fileExists(atPath: path) {
            try FileManager.default.copyItem(atPath: try BatchTests.clip(seconds: seconds, size: size), toPath: path)
        }
        return path
    }

    func start(environment more: [String: String] = [:]) throws {
        let configURL = dir.appendingPathComponent("config.json")
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        log = dir.appendingPathComponent("server-\(starts).log")
        starts += 1
        FileManager.default.createFile(atPath: log.path, contents: nil)
        var env = ProcessInfo.processInfo.environment
        env["COURSEPACK_API_TOKEN"] = token
        env["COURSEPACK_PRESETS"] = Support.fixtureDir.path
        env.merge(environment) { $1 }
        env.merge(more) { $1 }
        let p = try Child(Support.binary, ["serve", "--config", configURL.path], environment: env, stderr: .file(log))
        process = p
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let r = text.range(of: "listening on "), let line = text[r.upperBound...].split(separator: "\n").first,
               let port = line.split(separator: ":").last.flatMap({ Int($0) }) {
                self.port = port
                return
            }
            if !p.isRunning { break }
            usleep(50_000)
        }
        throw Support.FixtureError(description: "server did not start: \(logText)")
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    /// Changes a config field for the next start.
    func set(_ key: String, _ value: Any) { config[key] = value }

    func kill9() {
        guard let p = process else { return }
        p.send(SIGKILL)
        p.wait()
    }

    /// SIGTERM and wait; returns the exit status.
    func terminate() -> Int32 {
        guard let p = process else { return -1 }
        p.send(SIGTERM)
        p.wait()
        return p.status
    }

    struct Reply: Sendable {
        var status: Int
        var data: Data
        var headers: [String: String]
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:] }
    }

    static let session: URLSession = {
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = 60
        c.httpMaximumConnectionsPerHost = 64
        return URLSession(configuration: c)
    }()

    /// One HTTP request; `auth` nil sends no Authorization header.
    func request(_ method: String, _ path: String, json: Any? = nil, body: Data? = nil,
                 auth: String? = "default") async throws -> Reply {
        var r = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        r.httpMethod = method
        if let auth { r.setValue("Bearer \(auth == "default" ? token : auth)", forHTTPHeaderField: "Authorization") }
        if let json {
            r.httpBody = try JSONSerialization.data(withJSONObject: json)
            r.setValue("application/json", forHTTPHeaderField: "Content-Type")
        } else if let body {
            r.httpBody = body
        }
        return try await withCheckedThrowingContinuation { c in
            Self.session.dataTask(with: r) { data, response, error in
                if let error { c.resume(throwing: error); return }
                let http = response as! HTTPURLResponse
                var headers: [String: String] = [:]
                for (k, v) in http.allHeaderFields { if let k = k as? String, let v = v as? String { headers[k] = v } }
                c.resume(returning: Reply(status: http.statusCode, data: data ?? Data(), headers: headers))
            }.resume()
        }
    }

    func submit(_ fields: [String: Any]) async throws -> Reply {
        try await request("POST", "/v1/jobs", json: fields)
    }

    /// Polls a job until `done` holds for it.
    func wait(_ id: String, timeout: Double = 90, until done: ([String: Any]) -> Bool) async throws -> [String: Any] {
        let deadline = Date().addingTimeInterval(timeout)
        var last: [String: Any] = [:]
        while Date() < deadline {
            last = try await request("GET", "/v1/jobs/\(id)").json
            if done(last) { return last }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("job \(id) did not get there in \(timeout) s: \(last)\n\(logText.suffix(3000))")
        return last
    }

    func waitForState(_ id: String, _ states: Set<String>, timeout: Double = 90) async throws -> [String: Any] {
        try await wait(id, timeout: timeout) { states.contains($0["state"] as? String ?? "") }
    }
}

@Suite(.serialized) struct ServerTests {
    struct SchemaMismatch: Error { var detail: String }

    /// Throws when `object` does not match the schema.
    static func schemaCheck(_ schema: String, _ object: Any) throws {
        let f = try Support.scratch().appendingPathComponent("doc.json")
        try JSONSerialization.data(withJSONObject: object).write(to: f)
        let r = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/tools/validate_openapi.py").path,
                                            Support.repoRoot.appendingPathComponent("docs/openapi.json").path, schema, f.path])
        if r.status != 0 { throw SchemaMismatch(detail: r.stderr) }
    }

    static func validate(_ schema: String, _ object: Any) throws {
        let f = try Support.scratch().appendingPathComponent("doc.json")
        try JSONSerialization.data(withJSONObject: object).write(to: f)
        let r = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/tools/validate_openapi.py").path,
                                            Support.repoRoot.appendingPathComponent("docs/openapi.json").path, schema, f.path])
        #expect(r.status == 0, "\(schema) does not match docs/openapi.json: \(r.stderr.suffix(1500))")
    }

    @Test(arguments: StoreKind.allCases) func submitCompleteAndFetchTheResult(store: StoreKind) async throws {
        let s = try ServerHarness(store: store)
        try s.start()
        let source = try s.input("intro.mp4")
        let r = try await s.submit(["source": source, "courseId": "cs101", "lectureId": "intro", "title": "Welcome", "preset": "minimal"])
        #expect(r.status == 202)
        let id = try #require(r.json["id"] as? String)
        #expect(r.headers["Location"] == "/v1/jobs/\(id)")
        let job = try await s.waitForState(id, ["succeeded", "failed"])
        #expect(job["state"] as? String == "succeeded", "\(job)")
        #expect(job["attempts"] as? Int == 1)
        #expect(job["progress"] as? Double == 100)
        let package = try #require(job["package"] as? String)
        #expect(package == s.outputs.appendingPathComponent("cs101/intro").path)
        let lecture = try #require(job["lecture"] as? [String: Any])
        #expect(abs((lecture["duration"] as? Double ?? 0) - 4) < 0.2)
        let v = try Support.coursepack("validate", package)
        #expect(v.status == 0, "\(v.stdout)")
        try Self.validate("Job", job)

        let list = try await s.request("GET", "/v1/jobs?state=succeeded")
        #expect(list.status == 200)
        #expect((list.json["jobs"] as? [[String: Any]])?.map { $0["id"] as? String } == [id])
        try Self.validate("JobList", list.json)
        let metrics = String(decoding: try await s.request("GET", "/metrics").data, as: UTF8.self)
        #expect(metrics.contains(#"coursepack_jobs{state="succeeded"} 1"#), "\(metrics)")
        #expect(metrics.contains("coursepack_job_duration_seconds_count 1"))
        #expect(metrics.contains("coursepack_job_realtime_factor_bucket"))
        #expect(s.terminate() == 0)
    }

    @Test(arguments: StoreKind.allCases) func tokenPathsAndFieldsAreChecked(store: StoreKind) async throws {
        let s = try ServerHarness(store: store)
        try s.start()
        let source = try s.input("a.mp4")
        let outside = try Support.scratch().appendingPathComponent("secret.mp4")
        try FileManager.default.copyItem(atPath: source, toPath: outside.path)
        try FileManager.default.createSymbolicLink(atPath: s.inputs.appendingPathComponent("escape.mp4").path, withDestinationPath: outside.path)
        let base: [String: Any] = ["courseId": "c1", "lectureId": "l1"]

        #expect(try await s.request("GET", "/v1/jobs", auth: nil).status == 401)
        #expect(try await s.request("GET", "/v1/jobs", auth: "wrong-token-0123456789abcd").status == 401)
        #expect(try await s.request("POST", "/v1/jobs", json: base.merging(["source": source]) { $1 }, auth: nil).status == 401)
        #expect(try await s.request("GET", "/metrics", auth: nil).status == 401)
        #expect(try await s.request("GET", "/healthz", auth: nil).status == 200)

        for (fields, message) in [
            (["source": s.inputs.path + "/../secret.mp4"], "must not contain .."),
            (["source": s.inputs.appendingPathComponent("escape.mp4").path], "outside the input roots"),
            (["source": outside.path], "outside the input roots"),
            (["source": "relative.mp4"], "absolute"),
            (["source": s.inputs.path + "/missing.mp4"], "no such file"),
            (["source": source, "courseId": "../etc"], "courseId"),
            (["source": source, "lectureId": "a/b"], "lectureId"),
            (["source": source, "preset": "../../etc/passwd"], "preset"),
            (["source": source, "callbackUrl": "file:///etc/passwd"], "callbackUrl"),
            (["source": source, "upload": "x"], "exactly one"),
            (["upload": "../x"], "upload"),
            (["source": source, "captions": [["path": outside.path]]], "captions[0].path"),
        ] as [([String: Any], String)] {
            let r = try await s.submit(base.merging(fields) { $1 })
            #expect(r.status == 400, "\(fields) → \(r.status)")
            let msg = (r.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(msg.contains(message), "\(fields): \(msg)")
        }
        // What the server refuses, docs/openapi.json refuses too.
        let noPreset = base.merging(["source": source, "preset": ""]) { $1 }
        #expect(try await s.submit(noPreset).status == 400)
        try Self.validate("Submission", base.merging(["source": source]) { $1 })
        #expect(throws: (any Error).self, "the schema allows preset \"\"") { try Self.schemaCheck("Submission", noPreset) }
        #expect(try await s.request("PUT", "/v1/uploads/empty-1", body: Data()).status == 400)
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: Support.repoRoot.appendingPathComponent("docs/openapi.json"))) as? [String: Any]
        let put = ((spec?["paths"] as? [String: Any])?["/v1/uploads/{id}"] as? [String: Any])?["put"] as? [String: Any]
        let body = ((put?["requestBody"] as? [String: Any])?["content"] as? [String: Any])?["application/octet-stream"] as? [String: Any]
        #expect((body?["schema"] as? [String: Any])?["minLength"] as? Int == 1, "an empty upload body is allowed by the schema")
        #expect(try await s.request("POST", "/v1/jobs", body: Data("{not json".utf8)).status == 400)
        #expect(try await s.request("POST", "/v1/jobs", body: Data(repeating: 32, count: 100_000)).status == 413)
        #expect(try await s.request("GET", "/v1/jobs/job_00000000000000000000").status == 404)
        #expect(try await s.request("GET", "/v1/jobs/..%2F..%2Fetc").status == 404)
        #expect(try await s.request("GET", "/v1/jobs?state=bogus").status == 400)
        #expect(try await s.request("GET", "/v1/jobs?limit=0").status == 400)
        // The token never reaches the log.
        #expect(!s.logText.contains(s.token))
    }

    @Test(arguments: StoreKind.allCases) func uploadsStreamToDiskWithALimit(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["maxUploadBytes": 2_000_000])
        try s.start()
        let clip = try Data(contentsOf: URL(fileURLWithPath: try BatchTests.clip()))
        let up = try await s.request("PUT", "/v1/uploads/upload-1", body: clip)
        #expect(up.status == 201)
        #expect(up.json["bytes"] as? Int == clip.count)
        try Self.validate("Upload", up.json)
        let r = try await s.submit(["upload": "upload-1", "courseId": "c1", "lectureId": "uploaded"])
        #expect(r.status == 202)
        let job = try await s.waitForState(r.json["id"] as! String, ["succeeded", "failed"])
        #expect(job["state"] as? String == "succeeded", "\(job)")
        #expect(job["upload"] as? String == "upload-1")

        let big = try await s.request("PUT", "/v1/uploads/too-big", body: Data(repeating: 7, count: 3_000_000))
        #expect(big.status == 413)
        let uploads = s.dir.appendingPathComponent("data/uploads")
        #expect(try FileManager.default.contentsOfDirectory(atPath: uploads.path).sorted() == ["upload-1"])
        #expect(try await s.request("PUT", "/v1/uploads/bad%2Fid", body: clip).status == 400)
    }

    @Test(arguments: StoreKind.allCases) func cancellingARunningJobStopsItsWorker(store: StoreKind) async throws {
        let secret = "whsec-\(UUID().uuidString)"
        let s = try ServerHarness(store: store, environment: ["COURSEPACK_TEST_FAULT": "hang:hangs", "COURSEPACK_WEBHOOK_SECRET": secret])
        try s.start()
        let source = try s.input("hangs.mp4")
        let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": "stuck"])
        let id = r.json["id"] as! String
        _ = try await s.waitForState(id, ["running"])
        try await Task.sleep(for: .milliseconds(300))
        // The worker, which parses the untrusted media, holds neither the API token nor the webhook secret.
        let workers = BatchTests.processes(mentioning: source).compactMap { Int32($0.prefix { $0 != ":" }) }
        #expect(!workers.isEmpty)
        for pid in workers {
            let env = String(decoding: (FileManager.default.contents(atPath: "/proc/\(pid)/environ") ?? Data()).map { $0 == 0 ? 10 : $0 }, as: UTF8.self)
            #expect(env.contains("COURSEPACK_TEST_FAULT=hang:hangs"), "environment of \(pid) not read")
            #expect(!env.contains(s.token) && !env.contains("COURSEPACK_API_TOKEN"), "API token in worker \(pid)'s environment")
            #expect(!env.contains(secret) && !env.contains("COURSEPACK_WEBHOOK_SECRET"), "webhook secret in worker \(pid)'s environment")
        }
        let d = try await s.request("DELETE", "/v1/jobs/\(id)")
        #expect(d.status == 200, "\(d.json)")
        #expect(d.json["state"] as? String == "cancelled")
        #expect(BatchTests.processes(mentioning: source).isEmpty, "worker still running")
        let course = s.outputs.appendingPathComponent("c1")
        for _ in 0..<50 where FileManager.default.fileExists(atPath: course.path) { usleep(100_000) }
        #expect(!FileManager.default.fileExists(atPath: course.path), "output left behind: \((try? FileManager.default.contentsOfDirectory(atPath: course.path)) ?? [])")
        #expect(try await s.request("DELETE", "/v1/jobs/\(id)").status == 200)  // idempotent
        // A finished job cannot be cancelled.
        let ok = try await s.submit(["source": try s.input("fine.mp4"), "courseId": "c1", "lectureId": "fine"])
        let done = try await s.waitForState(ok.json["id"] as! String, ["succeeded", "failed"])
        #expect(try await s.request("DELETE", "/v1/jobs/\(done["id"] as! String)").status == 409)
    }

    /// Schemathesis drives every route of docs/openapi.json with generated requests (bounded: 15
    /// examples an operation, a fixed seed): no 5xx, responses as documented, 405 for methods a path
    /// does not take. Requests the schema allows but the server refuses for what they mean (a preset
    /// it does not offer, a source that does not exist) are not failures, so that check is off.
    @Test func schemathesisFindsNothing() async throws {
        let s = try ServerHarness()
        try s.start()
        let r = try Support.run("schemathesis", [
            "--no-color", "run", Support.repoRoot.appendingPathComponent("docs/openapi.json").path, "-u", "http://127.0.0.1:\(s.port)",
            "-H", "Authorization: Bearer \(s.token)", "-n", "15", "--seed", "20261130", "--checks", "all",
            "--exclude-checks", "positive_data_acceptance",
        ])
        #expect(r.status == 0, "\(r.stdout.suffix(3000)) \(r.stderr.suffix(500))")
        #expect(r.stdout.contains(" passed"), "\(r.stdout.suffix(500))")
    }

    @Test func openAPIDocumentsExactlyTheRoutes() async throws {
        let spec = try JSONSerialization.jsonObject(with: Data(contentsOf: Support.repoRoot.appendingPathComponent("docs/openapi.json"))) as! [String: Any]
        let paths = spec["paths"] as! [String: [String: Any]]
        var documented: [String] = []
        for (path, ops) in paths {
            for method in ops.keys where ["get", "post", "put", "delete", "patch"].contains(method) { documented.append("\(method.uppercased()) \(path)") }
        }
        #expect(Set(documented) == Set(API.routes.map { "\($0.method) \($0.path)" }))

        // Every documented operation answers on the real server with a documented status.
        let s = try ServerHarness()
        try s.start()
        let source = try s.input("doc.mp4")
        for (path, ops) in paths {
            for (method, op) in ops where ["get", "post", "put", "delete"].contains(method) {
                let concrete = path.replacingOccurrences(of: "{id}", with: path.hasPrefix("/v1/uploads") ? "doc-upload" : "job_00000000000000000000")
                let r: ServerHarness.Reply
                switch (method, path) {
                case ("post", _): r = try await s.submit(["source": source, "courseId": "doc", "lectureId": "doc"])
                case ("put", _): r = try await s.request("PUT", concrete, body: Data("bytes".utf8))
                default: r = try await s.request(method.uppercased(), concrete)
                }
                let responses = ((op as! [String: Any])["responses"] as! [String: Any]).keys
                #expect(responses.contains("\(r.status)"), "\(method) \(path) answered \(r.status), documented \(responses.sorted())")
            }
        }
    }
}

/// The server's recovery and load cases, in the same serialized suite: run beside the rest they
/// loaded the machine enough to starve the timing of other suites' cases.
extension ServerTests {
    @Test(arguments: StoreKind.allCases) func killedServerResumesItsJobAfterRestart(store: StoreKind) async throws {
        // The first run hangs (fault switch), so the server is surely killed in the middle of it.
        let s = try ServerHarness(store: store, config: ["workers": 1], environment: ["COURSEPACK_TEST_FAULT": "hang:long"])
        try s.start()
        let source = try s.input("long.mp4")
        let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": "long", "preset": "minimal"])
        let id = r.json["id"] as! String
        _ = try await s.waitForState(id, ["running"])
        try await Task.sleep(for: .milliseconds(300))
        s.kill9()
        for _ in 0..<20 where !BatchTests.processes(mentioning: source).isEmpty { usleep(100_000) }
        #expect(BatchTests.processes(mentioning: source).isEmpty, "worker outlived its server")
        // The temporary folder of a run whose process is gone (as a kill -9 mid-encode leaves it), and
        // one of a run still alive (this test process stands in for it).
        let course = s.outputs.appendingPathComponent("c1")
        let gone = try Child("/bin/true", [])
        gone.wait()
        let dead = course.appendingPathComponent(".long.partial-\(gone.pid)-1234")
        let live = course.appendingPathComponent(".other.partial-\(getpid())-5678")
        // A server on SQLite is alone on its output root and cleans up there; on PostgreSQL the root is
        // shared with other machines, whose process ids mean nothing here.
        for d in store == .sqlite ? [dead, live] : [] {
            try FileManager.default.createDirectory(at: d, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: d.appendingPathComponent("seg_00000.m4s").path, contents: Data([1, 2, 3]))
        }

        try s.start(environment: ["COURSEPACK_TEST_FAULT": ""])
        let job = try await s.waitForState(id, ["succeeded", "failed"], timeout: 120)
        #expect(job["state"] as? String == "succeeded", "\(job)")
        #expect(job["attempts"] as? Int == 2)
        let v = try Support.coursepack("validate", job["package"] as! String, "--no-decode")
        #expect(v.status == 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: course.path).sorted()
        #expect(leftovers == (store == .sqlite ? [live.lastPathComponent, "long"] : ["long"]), "\(leftovers)")
    }

    @Test(arguments: StoreKind.allCases) func twoHundredConcurrentSubmissionsCompleteExactlyOnce(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["workers": 3])
        try s.start()
        let source = try s.input("tiny.mp4", seconds: 1, size: "160x90")
        let replies = try await withThrowingTaskGroup(of: ServerHarness.Reply.self) { group in
            for i in 0..<200 {
                group.addTask { try await s.submit(["source": source, "courseId": "load", "lectureId": "l\(i)"]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(replies.allSatisfy { $0.status == 202 })
        let ids = Set(replies.compactMap { $0.json["id"] as? String })
        #expect(ids.count == 200)
        let deadline = Date().addingTimeInterval(300)
        var jobs: [[String: Any]] = []
        while Date() < deadline {
            var page: String? = nil
            jobs = []
            repeat {
                let r = try await s.request("GET", "/v1/jobs?limit=500" + (page.map { "&after=\($0)" } ?? ""))
                jobs += r.json["jobs"] as? [[String: Any]] ?? []
                page = r.json["next"] as? String
            } while page != nil
            if jobs.allSatisfy({ ["succeeded", "failed"].contains($0["state"] as? String) }) { break }
            try await Task.sleep(for: .seconds(1))
        }
        #expect(jobs.count == 200)
        let odd = jobs.filter { $0["state"] as? String != "succeeded" || $0["attempts"] as? Int != 1 }
        #expect(odd.isEmpty, "\(odd.map { "\($0["id"] ?? "") \($0["state"] ?? "") attempts \($0["attempts"] ?? "") \($0["error"] ?? "")" })")
        let metrics = String(decoding: try await s.request("GET", "/metrics").data, as: UTF8.self)
        #expect(metrics.contains("coursepack_worker_runs_total 200"), "\(metrics)")
        let packages = try FileManager.default.contentsOfDirectory(atPath: s.outputs.appendingPathComponent("load").path)
        #expect(packages.count == 200)
    }

    @Test(arguments: StoreKind.allCases) func webhookReachesAReceiverThatWasDownAtFirst(store: StoreKind) async throws {
        let secret = "webhook-secret-0123456789"
        let s = try ServerHarness(store: store, config: ["webhookAllowedHosts": ["127.0.0.1"]],
                                  environment: ["COURSEPACK_WEBHOOK_SECRET": secret])
        try s.start()
        let port = Int.random(in: 20_000...40_000)
        let r = try await s.submit(["source": try s.input("hook.mp4"), "courseId": "c1", "lectureId": "hook",
                                    "callbackUrl": "http://127.0.0.1:\(port)/hook"])
        let id = r.json["id"] as! String
        _ = try await s.wait(id) { (($0["webhook"] as? [String: Any])?["attempts"] as? Int ?? 0) >= 2 }
        let received = s.dir.appendingPathComponent("received.jsonl")
        // The receiver keeps only bodies signed with the shared secret.
        let receiver = try Child("python3", [Support.repoRoot.appendingPathComponent("Tests/server/receiver.py").path, "\(port)", received.path, secret])
        defer { receiver.send(SIGKILL); receiver.wait() }
        let job = try await s.wait(id, timeout: 60) { ($0["webhook"] as? [String: Any])?["state"] as? String == "delivered" }
        let hook = job["webhook"] as? [String: Any] ?? [:]
        #expect((hook["attempts"] as? Int ?? 0) >= 3)
        let lines = try String(contentsOf: received, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 1)
        let body = try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any] ?? [:]
        #expect(body["id"] as? String == id)
        #expect(body["state"] as? String == "succeeded")
        #expect(body["lecture"] is [String: Any])
    }

    @Test(arguments: StoreKind.allCases) func transientFailuresRetryWithBackoffAndBadInputDoesNot(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["maxAttempts": 3, "retryBaseSeconds": 0.5], environment: ["COURSEPACK_TEST_FAULT": "crash:crashes"])
        try s.start()
        let crash = try await s.submit(["source": try s.input("crashes.mp4"), "courseId": "c1", "lectureId": "crash"])
        let bad = s.inputs.appendingPathComponent("bad.mp4")
        try Data((0..<50_000).map { _ in UInt8.random(in: 0...255) }).write(to: bad)
        let badJob = try await s.submit(["source": bad.path, "courseId": "c1", "lectureId": "bad"])

        let b = try await s.waitForState(badJob.json["id"] as! String, ["succeeded", "failed"])
        #expect(b["state"] as? String == "failed")
        #expect(b["attempts"] as? Int == 1, "bad input is never retried")
        #expect((b["error"] as? [String: Any])?["category"] as? String == "badInput")

        let c = try await s.waitForState(crash.json["id"] as! String, ["succeeded", "failed"])
        #expect(c["state"] as? String == "failed")
        #expect(c["attempts"] as? Int == 3)
        #expect(((c["error"] as? [String: Any])?["reason"] as? String)?.contains("SIGSEGV") == true)
        #expect((c["error"] as? [String: Any])?["category"] as? String == "crashed")
        // Backoff: 0.5 s then 1 s between the three runs.
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let started = try #require(iso.date(from: c["createdAt"] as! String))
        let finished = try #require(iso.date(from: c["finishedAt"] as! String))
        #expect(finished.timeIntervalSince(started) >= 1.4)
    }

    @Test(arguments: StoreKind.allCases) func fullQueueAnswers429(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["workers": 1, "queueLimit": 2], environment: ["COURSEPACK_TEST_FAULT": "hang:hangs"])
        try s.start()
        let hang = try await s.submit(["source": try s.input("hangs.mp4"), "courseId": "c1", "lectureId": "h"])
        _ = try await s.waitForState(hang.json["id"] as! String, ["running"])
        let source = try s.input("q.mp4")
        #expect(try await s.submit(["source": source, "courseId": "c1", "lectureId": "q1"]).status == 202)
        #expect(try await s.submit(["source": source, "courseId": "c1", "lectureId": "q2"]).status == 202)
        let full = try await s.submit(["source": source, "courseId": "c1", "lectureId": "q3"])
        #expect(full.status == 429)
        #expect(full.headers["Retry-After"] != nil)
        _ = try await s.request("DELETE", "/v1/jobs/\(hang.json["id"] as! String)")
    }

    @Test(arguments: StoreKind.allCases) func sigtermLetsRunningJobsFinishAndRequeuesTheRest(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["workers": 2, "shutdownGraceSeconds": 6], environment: ["COURSEPACK_TEST_FAULT": "hang:hangs"])
        try s.start()
        let quick = try await s.submit(["source": try s.input("quick.mp4", seconds: 8, size: "640x360"), "courseId": "c1", "lectureId": "quick"])
        let stuck = try await s.submit(["source": try s.input("hangs.mp4"), "courseId": "c1", "lectureId": "stuck"])
        let queued = try await s.submit(["source": try s.input("later.mp4"), "courseId": "c1", "lectureId": "later"])
        _ = try await s.waitForState(quick.json["id"] as! String, ["running"])
        _ = try await s.waitForState(stuck.json["id"] as! String, ["running"])
        let stopped = Date()
        #expect(s.terminate() == 0)
        // The grace period and then SIGTERM/SIGKILL of the hung worker bound the shutdown.
        #expect(Date().timeIntervalSince(stopped) < 25)

        try s.start(environment: ["COURSEPACK_TEST_FAULT": ""])
        let q = try await s.request("GET", "/v1/jobs/\(quick.json["id"] as! String)").json
        #expect(q["state"] as? String == "succeeded", "the running job finished within the grace period: \(q)")
        for id in [stuck.json["id"] as! String, queued.json["id"] as! String] {
            let job = try await s.waitForState(id, ["succeeded", "failed"])
            #expect(job["state"] as? String == "succeeded", "\(job)")
            #expect(job["attempts"] as? Int == 1, "a run stopped by shutdown is not counted: \(job)")
        }
    }
}
