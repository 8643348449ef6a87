import Foundation
import Hummingbird
import LectureModel
import Mustache
import Synchronization

/// The operator's pages under /ui/: jobs (failures first), one job with its runs, workers, and a
/// finished lecture as a learner gets it; retry and cancel. Rendered on the server from Mustache
/// templates (`DashboardTemplates`), which escape everything a job carries; no asset from outside
/// the server. A page keeps itself current by fetching its own fragment every 1.5 s.
///
/// Access: the API token, given once to the login form, opens a session: an HttpOnly,
/// SameSite=Strict cookie, ended by logout or `uiSessionIdleSeconds` without a request. Every form
/// that changes something carries the session's CSRF token.
struct Dashboard: Sendable {
    let store: any JobStore
    let config: ServerConfig
    let sessions: UISessions
    let token: [UInt8]
    let library: MustacheLibrary

    static let cookie = "coursepack_ui"

    init(store: any JobStore, config: ServerConfig, token: String) throws {
        self.store = store
        self.config = config
        self.token = Array(token.utf8)
        sessions = UISessions(idle: config.uiSessionIdleSeconds)
        library = try DashboardTemplates.library()
    }

    func add(to router: Router<BasicRequestContext>) {
        let ui = router.group("/ui")
        ui.get("/login") { _, _ in try self.page("login", ["title": "Sign in"]) }
        ui.get("/live.js") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/javascript; charset=utf-8"],
                     body: .init(byteBuffer: .init(string: DashboardTemplates.liveScript)))
        }
        ui.post("/login") { request, context in try await self.login(request, context) }
        ui.get("/") { request, _ in try await self.authorized(request) { s in try await self.jobsPage(request, s) } }
        ui.get("/fragments/jobs") { request, _ in try await self.authorized(request) { _ in try await self.jobsFragment(request) } }
        ui.get("/jobs/:id") { request, context in
            try await self.authorized(request) { s in try await self.jobPage(try self.id(context), s, fragment: false) }
        }
        ui.get("/fragments/jobs/:id") { request, context in
            try await self.authorized(request) { s in try await self.jobPage(try self.id(context), s, fragment: true) }
        }
        ui.post("/jobs/:id/retry") { request, context in
            try await self.changing(request, context) { id in _ = try await self.store.retry(id) }
        }
        ui.post("/jobs/:id/cancel") { request, context in
            try await self.changing(request, context) { id in _ = try await self.store.requestCancel(id) }
        }
        ui.get("/workers") { request, _ in try await self.authorized(request) { s in try await self.workersPage(s, fragment: false) } }
        ui.get("/fragments/workers") { request, _ in try await self.authorized(request) { s in try await self.workersPage(s, fragment: true) } }
        ui.get("/lectures/:id") { request, context in
            try await self.authorized(request) { s in try await self.lecturePage(try self.id(context), s) }
        }
        ui.get("/files/:id/**") { request, context in
            try await self.authorized(request) { _ in try await self.file(try self.id(context), context.parameters.getCatchAll()) }
        }
        ui.post("/logout") { request, _ in
            try await self.authorized(request) { s in
                let form = try await Self.form(request)
                guard form["csrf"] == s.csrf else { throw HTTPError(.forbidden, message: "the form's CSRF token is missing or wrong") }
                self.sessions.end(s.id)
                var r = Self.redirect("/ui/login")
                r.setCookie(Cookie(name: Self.cookie, value: "", maxAge: 0, path: "/ui", httpOnly: true, sameSite: .strict))
                return r
            }
        }
    }

    // MARK: access

    func login(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let form = try await Self.form(request)
        guard BearerAuth<BasicRequestContext>.matches(Array((form["token"] ?? "").utf8), token) else {
            var r = try page("login", ["title": "Sign in", "error": "That is not this server's API token."])
            r.status = .unauthorized
            return r
        }
        let s = sessions.start()
        var r = Self.redirect("/ui/")
        r.setCookie(Cookie(name: Self.cookie, value: s.id, path: "/ui", httpOnly: true, sameSite: .strict))
        return r
    }

    /// Runs `body` for a request with a live session; else sends a browser to the login page.
    func authorized(_ request: Request, _ body: (UISessions.Session) async throws -> Response) async throws -> Response {
        guard let s = sessions.find(request.cookies[Self.cookie]?.value) else {
            if request.method == .get, !request.uri.path.hasPrefix("/ui/fragments/"), !request.uri.path.hasPrefix("/ui/files/") {
                return Self.redirect("/ui/login")
            }
            throw HTTPError(.unauthorized, message: "sign in at /ui/login first")
        }
        return try await body(s)
    }

    /// A state-changing form: a live session, its CSRF token, then `change`, then back to the job.
    func changing(_ request: Request, _ context: BasicRequestContext, _ change: (String) async throws -> Void) async throws -> Response {
        try await authorized(request) { s in
            let form = try await Self.form(request)
            guard form["csrf"] == s.csrf else { throw HTTPError(.forbidden, message: "the form's CSRF token is missing or wrong") }
            let id = try self.id(context)
            guard try await store.job(id, withLecture: false) != nil else { throw HTTPError(.notFound, message: "no job \(id)") }
            try await change(id)
            return Self.redirect("/ui/jobs/\(id)")
        }
    }

    func id(_ context: BasicRequestContext) throws -> String {
        guard let id = context.parameters.get("id"), id.range(of: "^job_[A-Za-z0-9]{1,64}$", options: .regularExpression) != nil else {
            throw HTTPError(.notFound, message: "no such job")
        }
        return id
    }

    static func form(_ request: Request) async throws -> [String: String] {
        let body = try await request.body.collect(upTo: 16_384)
        var form: [String: String] = [:]
        for pair in String(decoding: body.readableBytesView, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            if kv.count == 2 { form[kv[0]] = kv[1] }
        }
        return form
    }

    static func redirect(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    func page(_ template: String, _ values: [String: Any]) throws -> Response {
        guard let html = library.render(values, withTemplate: template) else {
            throw HTTPError(.internalServerError, message: "no template \(template)")
        }
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"]
        // Nothing but the server's own pages, scripts and media.
        headers[.init("Content-Security-Policy")!] =
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'self'; img-src 'self'; media-src 'self' blob:; frame-ancestors 'none'"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: .init(string: html)))
    }

    // MARK: pages

    func jobsPage(_ request: Request, _ s: UISessions.Session) async throws -> Response {
        var values = try await jobsValues(request)
        values["csrf"] = s.csrf
        values["title"] = "Jobs"
        values["query"] = request.uri.query ?? ""
        return try page("jobs", values)
    }

    func jobsFragment(_ request: Request) async throws -> Response {
        try page("jobs_table", try await jobsValues(request))
    }

    /// The job list: failures first, then running, queued (by queue position), the rest newest first.
    func jobsValues(_ request: Request) async throws -> [String: Any] {
        let course = request.uri.queryParameters.get("course").map { String($0) } ?? ""
        let state = request.uri.queryParameters.get("state").flatMap { Job.State(rawValue: String($0)) }
        // The latest 1000 failures, running and queued jobs (at most 1000 each, oldest first: the
        // queue's order), and the latest 200 others.
        let active: [Job.State] = [.failed, .running, .queued]
        var jobs: [Job] = []
        if state == nil || state == .failed { jobs += try await store.recent(states: [.failed], limit: 1000) }
        for s in [Job.State.running, .queued] where state == nil || state == s { jobs += try await store.list(state: s, after: nil, limit: 1000) }
        let done = Job.State.allCases.filter { !active.contains($0) && (state == nil || state == $0) }
        if !done.isEmpty { jobs += try await store.recent(states: done, limit: 200) }
        let queued = jobs.filter { $0.state == .queued }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
        let position = Dictionary(uniqueKeysWithValues: queued.enumerated().map { ($1.id, $0 + 1) })
        let holders = try await self.holders()
        if !course.isEmpty { jobs = jobs.filter { $0.courseId == course } }
        let rank: [Job.State: Int] = [.failed: 0, .running: 1, .queued: 2]
        jobs.sort { a, b in
            let (ra, rb) = (rank[a.state] ?? 3, rank[b.state] ?? 3)
            if ra != rb { return ra < rb }
            if a.state == .queued { return (position[a.id] ?? 0) < (position[b.id] ?? 0) }
            return a.updatedAt > b.updatedAt
        }
        let now = Date()
        let rows: [[String: Any]] = jobs.prefix(1000).map { j in
            var row = Self.summary(j, now: now)
            if let p = position[j.id] { row["position"] = p }
            if j.state == .running, let w = holders.byJob[j.id] { row["worker"] = w }
            return row
        }
        let counts = try await store.counts()
        return [
            "jobs": rows, "empty": rows.isEmpty, "course": course, "state": state?.rawValue ?? "",
            "states": Job.State.allCases.map { ["name": $0.rawValue, "selected": $0 == state, "count": counts[$0] ?? 0] },
        ]
    }

    /// Which worker holds each running job (the worker of its latest run), by job and by worker.
    func holders() async throws -> (byJob: [String: String], byWorker: [String: [String]]) {
        let names = Dictionary(try await store.workers().map { ($0.id, $0.name) }) { a, _ in a }
        var byJob: [String: String] = [:]
        var byWorker: [String: [String]] = [:]
        for (job, worker) in try await store.holders().sorted(by: { $0.key < $1.key }) {
            byJob[job] = names[worker] ?? worker
            byWorker[worker, default: []].append(job)
        }
        return (byJob, byWorker)
    }

    static func summary(_ j: Job, now: Date) -> [String: Any] {
        var row: [String: Any] = [
            "id": j.id, "state": j.state.rawValue, "course": j.courseId, "lecture": j.lectureId, "title": j.title ?? j.lectureId,
            "attempts": j.attempts, "updated": clock(j.updatedAt), "failed": j.state == .failed,
            "running": j.state == .running, "succeeded": j.state == .succeeded,
        ]
        if let e = j.error { row["error"] = ["category": e.category.rawValue, "reason": e.reason] }
        if j.state == .running {
            row["progress"] = String(format: "%.0f", j.progress)
            if let started = j.startedAt, j.progress > 1 {
                let elapsed = now.timeIntervalSince(started)
                row["eta"] = duration(elapsed * (100 - j.progress) / j.progress)
            }
        }
        return row
    }

    func jobPage(_ id: String, _ s: UISessions.Session, fragment: Bool) async throws -> Response {
        guard let job = try await store.job(id, withLecture: true) else { throw HTTPError(.notFound, message: "no job \(id)") }
        var values = Self.summary(job, now: Date())
        values["csrf"] = s.csrf
        values["title"] = job.title ?? job.lectureId
        values["source"] = job.source
        values["preset"] = job.preset
        values["package"] = job.package ?? ""
        values["created"] = Self.clock(job.createdAt)
        values["started"] = job.startedAt.map(Self.clock) ?? ""
        values["finished"] = job.finishedAt.map(Self.clock) ?? ""
        values["retryable"] = [.failed, .cancelled, .superseded].contains(job.state)
        values["cancellable"] = job.state == .queued || job.state == .running
        if let w = job.webhook {
            values["webhook"] = ["url": job.callbackUrl ?? "", "state": w.state, "attempts": w.attempts, "lastError": w.lastError ?? ""]
        }
        values["runs"] = try await store.runs(of: id).enumerated().map { i, r -> [String: Any] in
            var run: [String: Any] = ["n": i + 1, "worker": r.worker, "started": Self.clock(r.started), "outcome": r.outcome ?? "running"]
            if let e = r.ended { run["took"] = Self.duration(e.timeIntervalSince(r.started)) }
            if let f = r.failure { run["failure"] = ["category": f.category.rawValue, "reason": f.reason] }
            return run
        }
        return try page(fragment ? "job_detail" : "job", values)
    }

    func workersPage(_ s: UISessions.Session, fragment: Bool) async throws -> Response {
        let now = Date()
        let holders = try await self.holders()
        let rows: [[String: Any]] = try await store.workers().map { w in
            [
                "name": w.name, "host": w.host, "version": w.version, "state": w.state.rawValue, "gone": w.state != .active,
                "heartbeat": Self.duration(now.timeIntervalSince(w.lastHeartbeat)) + " ago", "running": w.running, "finished": w.finished,
                "started": Self.clock(w.startedAt), "jobs": (holders.byWorker[w.id] ?? []).map { ["id": $0] },
            ]
        }
        return try page(fragment ? "workers_table" : "workers", ["title": "Workers", "csrf": s.csrf, "workers": rows, "empty": rows.isEmpty])
    }

    func lecturePage(_ id: String, _ s: UISessions.Session) async throws -> Response {
        guard let job = try await store.job(id, withLecture: true) else { throw HTTPError(.notFound, message: "no job \(id)") }
        guard job.state == .succeeded, let text = job.lectureJSON, let manifest = try? JSONDecoder().decode(LectureManifest.self, from: Data(text.utf8)) else {
            throw HTTPError(.notFound, message: "\(id) has no finished lecture")
        }
        let base = "/ui/files/\(id)/"
        var values: [String: Any] = ["title": job.title ?? job.lectureId, "id": id, "csrf": s.csrf, "base": base,
                                     "duration": Self.duration(manifest.duration)]
        values["masters"] = manifest.masters.enumerated().map { i, m in
            ["url": base + m.playlist, "name": m.playlist, "peak": m.peakBitrate / 1000, "first": i == 0] as [String: Any]
        }
        if let p = manifest.poster { values["poster"] = base + p.small }
        values["renditions"] = (manifest.renditions + manifest.audio).map { r -> [String: Any] in
            ["name": r.name, "size": r.width.map { "\($0)x\(r.height ?? 0)" } ?? "audio", "peak": r.peakBitrate / 1000, "average": r.averageBitrate / 1000]
        }
        values["chapters"] = manifest.chapters.map { c -> [String: Any] in
            ["start": Self.duration(c.start), "title": c.title, "still": base + (c.lightStill ?? c.still)]
        }
        values["captions"] = manifest.captions.map { ["language": $0.language ?? "und", "name": $0.name] }
        values["hasCaptions"] = !manifest.captions.isEmpty
        if let t = manifest.transcript, let package = job.package,
           case let .success(words) = await Self.read(t.text, in: package, limit: 4 << 20) {
            values["transcript"] = String(decoding: words, as: UTF8.self)
        }
        if let sb = manifest.storyboard { values["storyboard"] = base + (sb.sprites.first ?? "") }
        return try page("lecture", values)
    }

    /// A file of a finished lecture's package, read under its folder only (`PackageFiles`: no link
    /// followed, no name outside it).
    func file(_ id: String, _ parts: [Substring]) async throws -> Response {
        guard let job = try await store.job(id, withLecture: false), job.state == .succeeded, let package = job.package else {
            throw HTTPError(.notFound, message: "no finished lecture \(id)")
        }
        let path = parts.joined(separator: "/")
        guard !path.isEmpty, !parts.contains(where: { $0 == ".." || $0 == "." || $0.hasPrefix(".") }) else {
            throw HTTPError(.notFound, message: "no such file")
        }
        guard case let .success(data) = await Self.read(path, in: package, limit: PackageFiles.Limit.segment) else {
            throw HTTPError(.notFound, message: "no such file")
        }
        let types = ["m3u8": "application/vnd.apple.mpegurl", "mp4": "video/mp4", "m4s": "video/iso.segment", "vtt": "text/vtt; charset=utf-8",
                     "jpg": "image/jpeg", "webp": "image/webp", "json": "application/json", "txt": "text/plain; charset=utf-8", "m4a": "audio/mp4"]
        let ext = (path as NSString).pathExtension.lowercased()
        return Response(status: .ok, headers: [.contentType: types[ext] ?? "application/octet-stream", .cacheControl: "no-store"],
                        body: .init(byteBuffer: .init(bytes: data)))
    }

    /// A package's file, read on a thread of its own (the reads block), never outside the package.
    static func read(_ path: String, in package: String, limit: Int) async -> Result<Data, any Error> {
        await onOwnThread { Result { try PackageFiles(root: URL(fileURLWithPath: package)).read(path, limit: limit) } }
    }

    /// A time as RFC 3339 in UTC, e.g. 2026-12-07T00:41:03Z (a value format: no formatter made per row).
    static func clock(_ d: Date) -> String {
        d.formatted(.iso8601)
    }

    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0 else { return "?" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t / 60 % 60) : t >= 60 ? String(format: "%dm%02ds", t / 60, t % 60) : "\(t)s"
    }
}

/// The operator's sessions, in this server's memory: a random id (the cookie) and a CSRF token each.
final class UISessions: Sendable {
    struct Session: Sendable {
        let id: String
        let csrf: String
        var lastSeen: Date
    }

    private let sessions = Mutex<[String: Session]>([:])
    let idle: TimeInterval

    init(idle: TimeInterval) { self.idle = idle }

    static func random() -> String {
        var g = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &g)) }.joined()
    }

    func start() -> Session {
        let s = Session(id: Self.random(), csrf: Self.random(), lastSeen: Date())
        sessions.withLock { all in
            all = all.filter { Date().timeIntervalSince($0.value.lastSeen) <= idle }
            all[s.id] = s
        }
        return s
    }

    /// The live session of this cookie, its idle clock restarted; nil when there is none or it idled out.
    func find(_ id: String?) -> Session? {
        guard let id, !id.isEmpty else { return nil }
        return sessions.withLock { all in
            guard var s = all[id] else { return nil }
            guard Date().timeIntervalSince(s.lastSeen) <= idle else { all[id] = nil; return nil }
            s.lastSeen = Date()
            all[id] = s
            return s
        }
    }

    func end(_ id: String) { sessions.withLock { _ = $0.removeValue(forKey: id) } }
}
