import Foundation
@testable import Server
import Testing

/// The operator's pages (/ui/) on a real `coursepack serve`, through curl: sessions, CSRF, escaping.
/// The pages in a real browser are in `dashboardInChromium`.
@Suite(.serialized) struct DashboardTests {
    struct Answer {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    /// One request with curl (redirects not followed), with the session cookie when given.
    static func curl(_ s: ServerHarness, _ method: String, _ path: String, cookie: String? = nil, form: [String: String]? = nil,
                     bearer: Bool = false) async throws -> Answer {
        var args = ["-s", "-i", "-X", method, "http://127.0.0.1:\(s.port)\(path)"]
        if let cookie { args += ["-H", "Cookie: coursepack_ui=\(cookie)"] }
        if bearer { args += ["-H", "Authorization: Bearer \(s.token)"] }
        for (k, v) in form ?? [:] { args += ["--data-urlencode", "\(k)=\(v)"] }
        if method == "POST", form == nil { args += ["-d", ""] }
        // The wait for the process blocks: on a thread of its own, not one the other tests' tasks need.
        let arguments = args
        let r = try await onOwnThread { Result { try Support.run("curl", arguments, timeout: 60) } }.get()
        let text = r.stdout.replacingOccurrences(of: "\r\n", with: "\n")
        let parts = text.components(separatedBy: "\n\n")
        let head = parts.first ?? ""
        var headers: [String: String] = [:]
        for line in head.split(separator: "\n").dropFirst() {
            let kv = line.split(separator: ":", maxSplits: 1)
            if kv.count == 2 { headers[kv[0].lowercased()] = kv[1].trimmingCharacters(in: .whitespaces) }
        }
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return Answer(status: status, headers: headers, body: parts.dropFirst().joined(separator: "\n\n"))
    }

    static func login(_ s: ServerHarness) async throws -> (cookie: String, csrf: String) {
        let r = try await curl(s, "POST", "/ui/login", form: ["token": s.token])
        let set = try #require(r.headers["set-cookie"], "\(r)")
        let cookie = String(set.split(separator: ";")[0].dropFirst("coursepack_ui=".count))
        let page = try await curl(s, "GET", "/ui/", cookie: cookie)
        let csrf = try #require(page.body.range(of: #"name="csrf" value="([0-9a-f]+)""#, options: .regularExpression).map {
            String(page.body[$0].split(separator: "\"")[3])
        })
        return (cookie, csrf)
    }

    @Test(arguments: StoreKind.allCases)
    func pagesNeedASessionAndFormsTheirCSRFToken(store: StoreKind) async throws {
        // On SQLite the server runs the job itself and hangs in it (fault switch), so it is running when cancelled.
        let s = try ServerHarness(store: store, config: ["workers": store == .postgres ? 0 : 1],
                                  environment: ["COURSEPACK_TEST_FAULT": "hang:xss"])
        try s.start()
        let source = try s.input("xss.mp4")
        // No session: a page sends the browser to the login form; fragments, files and forms are refused.
        let anonymous = try await Self.curl(s, "GET", "/ui/")
        #expect(anonymous.status == 303 && anonymous.headers["location"] == "/ui/login", "\(anonymous)")
        #expect(try await Self.curl(s, "GET", "/ui/", bearer: true).status == 303, "the API token header is not a session")
        #expect(try await Self.curl(s, "GET", "/ui/fragments/jobs").status == 401)
        #expect(try await Self.curl(s, "POST", "/ui/jobs/job_x/cancel", form: ["csrf": "x"]).status == 401)
        #expect(try await Self.curl(s, "GET", "/ui/login").status == 200)
        let wrong = try await Self.curl(s, "POST", "/ui/login", form: ["token": "not-the-token"])
        #expect(wrong.status == 401 && wrong.headers["set-cookie"] == nil && wrong.body.contains("not this server"), "\(wrong)")

        let ok = try await Self.curl(s, "POST", "/ui/login", form: ["token": s.token])
        #expect(ok.status == 303 && ok.headers["location"] == "/ui/")
        let set = try #require(ok.headers["set-cookie"])
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] { #expect(set.contains(attribute), "\(set)") }
        let (cookie, csrf) = try await Self.login(s)

        // Everything a job carries is shown as text.
        let hostile = "<script>alert(1)</script>"
        let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": "xss", "title": hostile, "preset": "minimal"])
        let id = try #require(r.json["id"] as? String)
        let page = try await Self.curl(s, "GET", "/ui/", cookie: cookie)
        #expect(page.status == 200 && page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.body.contains(hostile))
        #expect(page.body.utf8.count < 50_000, "the jobs page is \(page.body.utf8.count) bytes")
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        let detail = try await Self.curl(s, "GET", "/ui/jobs/\(id)", cookie: cookie)
        #expect(detail.status == 200 && !detail.body.contains(hostile))

        // A form needs the session's CSRF token.
        let forged = try await Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie, form: ["csrf": String(csrf.reversed())])
        #expect(forged.status == 403, "\(forged)")
        #expect(try await Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie).status == 403)
        let before = try await s.request("GET", "/v1/jobs/\(id)").json["state"] as? String
        #expect(before == "queued" || before == "running", "\(before ?? "")")
        let cancel = try await Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie, form: ["csrf": csrf])
        #expect(cancel.status == 303 && cancel.headers["location"] == "/ui/jobs/\(id)", "\(cancel)")
        let state = try await s.waitForState(id, ["cancelled", "succeeded"])["state"] as? String
        #expect(state == "cancelled", "\(state ?? "")")
        // A new session after that wait, which may be longer than the idle limit on a loaded machine.
        let (cookie2, csrf2) = try await Self.login(s)

        // Files are served from a finished package only, never outside it.
        for path in ["/ui/files/\(id)/master.m3u8", "/ui/files/\(id)/../../etc/passwd", "/ui/files/\(id)/%2e%2e/x"] {
            #expect(try await Self.curl(s, "GET", path, cookie: cookie2).status == 404, "\(path)")
        }

        // Logout ends the session; an idle session ends by itself.
        #expect(try await Self.curl(s, "POST", "/ui/logout", cookie: cookie2, form: ["csrf": csrf2]).status == 303)
        #expect(try await Self.curl(s, "GET", "/ui/", cookie: cookie2).status == 303)
    }

    /// A session ends after `uiSessionIdleSeconds` without a request, and a request renews it.
    @Test func sessionsEndWhenIdle() async throws {
        let idle = 4.0
        let s = try ServerHarness(config: ["uiSessionIdleSeconds": idle])
        try s.start()
        var lastSent = Date()
        let login = try await Self.curl(s, "POST", "/ui/login", form: ["token": s.token])
        let cookie = String(try #require(login.headers["set-cookie"]).split(separator: ";")[0].dropFirst("coursepack_ui=".count))
        // Requests closer together than the limit keep the session (when this machine keeps up).
        for _ in 0..<3 {
            try await Task.sleep(for: .seconds(idle / 2))
            let sent = Date()
            let status = try await Self.curl(s, "GET", "/ui/workers", cookie: cookie).status
            // The server saw the last request after it was sent and this one before its answer came:
            // the gap it saw is at most this.
            let gap = Date().timeIntervalSince(lastSent)
            // A slower gap may have ended the session rightly, and with it what the next ones can show.
            guard gap < idle - 0.5 else { break }
            #expect(status == 200, "a request at most \(gap) s after the last one")
            lastSent = sent
        }
        try await Task.sleep(for: .seconds(idle + 0.5))
        #expect(try await Self.curl(s, "GET", "/ui/workers", cookie: cookie).status == 303, "idle past uiSessionIdleSeconds")
    }

    /// The pages in Chromium on a server of each store (PostgreSQL with a worker process): log in, the failure first with its
    /// reason, markup in a title as text, a retry after fixing the source watched to success without
    /// a reload, the finished lecture playing, a running job cancelled and its worker letting go,
    /// and a worker killed with SIGKILL marked lost while its job runs again on another. Every page
    /// is photographed (COURSEPACK_UI_SHOTS=docs/ui keeps the PostgreSQL run's for docs/SERVER.md).
    /// On SQLite the server runs the jobs itself, so there is no worker process to kill.
    @Test(arguments: StoreKind.allCases)
    func dashboardInChromium(store: StoreKind) async throws {
        let url = store == .postgres ? try PostgresCluster.get().createDatabase("dashboard") : ""
        let s = try ServerHarness(store: store, database: store == .postgres ? url : nil, config: ["workers": store == .postgres ? 0 : 1],
                                  environment: store == .sqlite ? ["COURSEPACK_TEST_FAULT": "hang:stuck"] : [:])
        try s.start()
        let w1 = store == .postgres
            ? try WorkerHarness(database: url, name: "w1", folder: s.dir, environment: ["COURSEPACK_TEST_FAULT": "hang:stuck"]) : nil
        let good = try BatchTests.clip(seconds: 8, size: "320x180")
        let bad = s.inputs.appendingPathComponent("broken.mp4").path
        try Data((0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 7919) }).write(to: URL(fileURLWithPath: bad))
        let stuck = try ["stuck1.mp4", "stuck2.mp4"].map { try s.input($0) }
        let badID = try #require(try await s.submit(["source": bad, "courseId": "c1", "lectureId": "broken", "title": "Broken upload",
                                                     "preset": "minimal"]).json["id"] as? String)
        let xssID = try #require(try await s.submit(["source": try s.input("intro.mp4"), "courseId": "c1", "lectureId": "intro",
                                                     "title": "<script>alert(1)</script>", "preset": "minimal"]).json["id"] as? String)
        #expect(try await s.waitForState(badID, ["failed", "succeeded"])["state"] as? String == "failed")
        #expect(try await s.waitForState(xssID, ["failed", "succeeded"])["state"] as? String == "succeeded")

        // The screenshots go to a scratch folder; COURSEPACK_UI_SHOTS=docs/ui (PostgreSQL run) renews docs/SERVER.md's.
        let wanted = ProcessInfo.processInfo.environment["COURSEPACK_UI_SHOTS"].flatMap { $0.isEmpty || store != .postgres ? nil : $0 }
        let shots = wanted.map { URL(fileURLWithPath: $0, relativeTo: Support.repoRoot) } ?? s.dir.appendingPathComponent("shots")
        let params: [String: Any] = [
            "base": "http://127.0.0.1:\(s.port)", "token": s.token, "bad": bad, "good": good, "stuck": stuck,
            "ids": ["bad": badID, "xss": xssID], "w1": w1.map { Int($0.process.pid) } ?? 0, "worker": store == .postgres ? "w1" : "",
            "second": [Support.binary, "worker", "--database", url, "--name", "w2", "--workers", "1", "--scratch",
                       s.dir.appendingPathComponent("scratch-w2").path, "--lease-seconds", "3", "--poll-seconds", "1", "--grace", "2"],
            "shots": shots.path,
        ]
        let file = s.dir.appendingPathComponent("dashboard.json")
        try JSONSerialization.data(withJSONObject: params).write(to: file)
        let script = Support.repoRoot.appendingPathComponent("Tests/browser/dashboard.py").path
        let r = try await onOwnThread { Result { try Support.run("python3", [script, file.path], timeout: 600) } }.get()
        try #require(r.status == 0, "\(r.stdout)\n\(r.stderr.suffix(3000))\n\(s.logText.suffix(2000))")
        let seen = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.split(separator: "\n").last!.utf8)) as? [String: Any])
        let first = seen["first"] as? [String: Any]
        #expect(first?["id"] as? String == badID && first?["state"] as? String == "failed", "\(seen)")
        #expect((first?["text"] as? String)?.contains("badInput") == true, "the reason shows with the failure: \(seen)")
        #expect(seen["titleAsText"] as? Bool == true && seen["alert"] as? Bool == false, "\(seen)")
        #expect(seen["phoneFits"] as? Bool == true, "the jobs page is wider than a phone's screen")
        let retry = seen["retry"] as? [String: Any]
        #expect(retry?["noReload"] as? Bool == true && (retry?["states"] as? [String])?.contains("succeeded") == true, "\(seen)")
        #expect(retry?["runs"] as? Int == 2, "both runs are listed: \(seen)")
        let lecture = seen["lecture"] as? [String: Any]
        #expect((lecture?["played"] as? Double ?? 0) > 1 && (lecture?["renditions"] as? Int ?? 0) >= 2 && (lecture?["masters"] as? Int ?? 0) >= 1, "\(seen)")
        let cancel = seen["cancel"] as? [String: Any]
        #expect(cancel?["noReload"] as? Bool == true && cancel?["workerFree"] as? Bool == true, "\(seen)")
        if store == .postgres {
            let killed = seen["kill"] as? [String: Any]
            #expect(killed?["state"] as? String == "succeeded" && killed?["attempts"] as? Int == 2, "\(seen)")
        }
        for page in ["login", "jobs", "jobs-phone", "job", "lecture", "workers"] {
            #expect(FileManager.default.fileExists(atPath: shots.appendingPathComponent("\(page).png").path), "\(page).png")
        }
    }
}
