import Foundation
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
                     bearer: Bool = false) throws -> Answer {
        var args = ["-s", "-i", "-X", method, "http://127.0.0.1:\(s.port)\(path)"]
        if let cookie { args += ["-H", "Cookie: coursepack_ui=\(cookie)"] }
        if bearer { args += ["-H", "Authorization: Bearer \(s.token)"] }
        for (k, v) in form ?? [:] { args += ["--data-urlencode", "\(k)=\(v)"] }
        if method == "POST", form == nil { args += ["-d", ""] }
        let r = try Support.run("curl", args, timeout: 60)
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

    static func login(_ s: ServerHarness) throws -> (cookie: String, csrf: String) {
        let r = try curl(s, "POST", "/ui/login", form: ["token": s.token])
        let set = try #require(r.headers["set-cookie"], "\(r)")
        let cookie = String(set.split(separator: ";")[0].dropFirst("coursepack_ui=".count))
        let page = try curl(s, "GET", "/ui/", cookie: cookie)
        let csrf = try #require(page.body.range(of: #"name="csrf" value="([0-9a-f]+)""#, options: .regularExpression).map {
            String(page.body[$0].split(separator: "\"")[3])
        })
        return (cookie, csrf)
    }

    @Test(arguments: StoreKind.allCases)
    func pagesNeedASessionAndFormsTheirCSRFToken(store: StoreKind) async throws {
        let s = try ServerHarness(store: store, config: ["uiSessionIdleSeconds": 3, "workers": store == .postgres ? 0 : 1])
        try s.start()
        // No session: a page sends the browser to the login form; fragments, files and forms are refused.
        let anonymous = try Self.curl(s, "GET", "/ui/")
        #expect(anonymous.status == 303 && anonymous.headers["location"] == "/ui/login", "\(anonymous)")
        #expect(try Self.curl(s, "GET", "/ui/", bearer: true).status == 303, "the API token header is not a session")
        #expect(try Self.curl(s, "GET", "/ui/fragments/jobs").status == 401)
        #expect(try Self.curl(s, "POST", "/ui/jobs/job_x/cancel", form: ["csrf": "x"]).status == 401)
        #expect(try Self.curl(s, "GET", "/ui/login").status == 200)
        let wrong = try Self.curl(s, "POST", "/ui/login", form: ["token": "not-the-token"])
        #expect(wrong.status == 401 && wrong.headers["set-cookie"] == nil && wrong.body.contains("not this server"), "\(wrong)")

        let ok = try Self.curl(s, "POST", "/ui/login", form: ["token": s.token])
        #expect(ok.status == 303 && ok.headers["location"] == "/ui/")
        let set = try #require(ok.headers["set-cookie"])
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] { #expect(set.contains(attribute), "\(set)") }
        let (cookie, csrf) = try Self.login(s)

        // Everything a job carries is shown as text.
        let source = try s.input("xss.mp4", seconds: 60)
        let hostile = "<script>alert(1)</script>"
        let r = try await s.submit(["source": source, "courseId": "c1", "lectureId": "xss", "title": hostile, "preset": "minimal"])
        let id = try #require(r.json["id"] as? String)
        let page = try Self.curl(s, "GET", "/ui/", cookie: cookie)
        #expect(page.status == 200 && page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;") && !page.body.contains(hostile))
        #expect(page.body.utf8.count < 50_000, "the jobs page is \(page.body.utf8.count) bytes")
        #expect(page.headers["content-security-policy"]?.contains("default-src 'self'") == true)
        let detail = try Self.curl(s, "GET", "/ui/jobs/\(id)", cookie: cookie)
        #expect(detail.status == 200 && !detail.body.contains(hostile))

        // A form needs the session's CSRF token.
        let forged = try Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie, form: ["csrf": String(csrf.reversed())])
        #expect(forged.status == 403, "\(forged)")
        #expect(try Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie).status == 403)
        let before = try await s.request("GET", "/v1/jobs/\(id)").json["state"] as? String
        #expect(before == "queued" || before == "running", "\(before ?? "")")
        let cancel = try Self.curl(s, "POST", "/ui/jobs/\(id)/cancel", cookie: cookie, form: ["csrf": csrf])
        #expect(cancel.status == 303 && cancel.headers["location"] == "/ui/jobs/\(id)", "\(cancel)")
        let state = try await s.waitForState(id, ["cancelled", "succeeded"])["state"] as? String
        #expect(state == "cancelled", "\(state ?? "")")

        // Files are served from a finished package only, never outside it.
        for path in ["/ui/files/\(id)/master.m3u8", "/ui/files/\(id)/../../etc/passwd", "/ui/files/\(id)/%2e%2e/x"] {
            #expect(try Self.curl(s, "GET", path, cookie: cookie).status == 404, "\(path)")
        }

        // Logout ends the session; an idle session ends by itself.
        #expect(try Self.curl(s, "POST", "/ui/logout", cookie: cookie, form: ["csrf": csrf]).status == 303)
        #expect(try Self.curl(s, "GET", "/ui/", cookie: cookie).status == 303)
        let (idle, _) = try Self.login(s)
        #expect(try Self.curl(s, "GET", "/ui/workers", cookie: idle).status == 200)
        try await Task.sleep(for: .milliseconds(3500))
        #expect(try Self.curl(s, "GET", "/ui/workers", cookie: idle).status == 303, "idle past uiSessionIdleSeconds")
    }
}
