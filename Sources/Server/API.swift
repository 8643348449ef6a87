import Course
public import Foundation
public import Hummingbird
import LectureModel
public import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP job API (docs/openapi.json): submit, inspect, list and cancel jobs, stream uploads,
/// health and metrics. Every route but /healthz needs the bearer token.
public enum API {
    /// Routes as documented in docs/openapi.json; a test checks the two agree.
    public static let routes: [(method: String, path: String)] = [
        ("POST", "/v1/jobs"), ("GET", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("DELETE", "/v1/jobs/{id}"),
        ("PUT", "/v1/uploads/{id}"), ("GET", "/v1/workers"), ("GET", "/healthz"), ("GET", "/metrics"),
    ]

    /// Opens the job store (PostgreSQL when the config names a database, else SQLite in the data
    /// folder), builds the server and runs it until SIGTERM or SIGINT (graceful shutdown).
    public static func serve(config: ServerConfig, executable: String, presets: [String: URL], logger: Logger) async throws {
        for dir in [config.outputRoot, config.dataDirectory, uploadsFolder(config)] {
            try createFolder(dir)
        }
        let store: any JobStore
        if let url = config.database {
            store = try await PostgresJobStore.open(url: url, logger: logger)
        } else {
            store = try SQLiteJobStore(path: URL(fileURLWithPath: config.dataDirectory).appendingPathComponent("jobs.sqlite").path)
        }
        // What killed publishers (servers, workers, batches, single runs) left under the output root,
        // by Publishing's rule: this host's dead processes' folders, other hosts' old ones.
        let root = URL(fileURLWithPath: config.outputRoot)
        await onOwnThread { Publishing.removeLeftovers(under: root) }
        try await buildApplication(config: config, store: store, executable: executable, presets: presets, logger: logger).runService()
    }

    /// Builds the server: the router, the job runner (unless `workers` is 0) and the webhook sender, on one job store.
    public static func buildApplication(config: ServerConfig, store: any JobStore, executable: String, presets: [String: URL],
                                        logger: Logger) throws -> some ApplicationProtocol {
        let token = try config.token()
        let webhookSecret = try config.webhookSecret()
        let metrics = ServerMetrics()
        let presetTexts = try presets.mapValues { url in
            do { return try String(contentsOf: url, encoding: .utf8) } catch {
                throw CoursePackError(.usage, path: url.path, "cannot read: \(error.localizedDescription)")
            }
        }
        let specs = SpecMaker(config: config, presets: presetTexts)
        var runner: JobRunner?
        if config.workers > 0 {
            let settings = RunnerSettings(workers: config.workers, leaseSeconds: config.leaseSeconds,
                                          shutdownGraceSeconds: config.shutdownGraceSeconds, pollSeconds: config.pollSeconds,
                                          scratch: URL(fileURLWithPath: config.scratchDirectory ?? URL(fileURLWithPath: config.dataDirectory).appendingPathComponent("scratch").path),
                                          name: "serve@\(ProcessInfo.processInfo.hostName)")
            runner = JobRunner(store: store, settings: settings, executable: executable, metrics: metrics, logger: logger,
                               legacySpec: { specs.spec(for: $0) })
        }
        let webhooks = Webhooks(store: store, config: config, secret: webhookSecret, metrics: metrics, logger: logger)
        let handlers = Handlers(store: store, config: config, specs: specs, runner: runner, metrics: metrics,
                                inputRoots: config.inputRoots.map { realPath($0) ?? $0 })

        let router = Router()
        router.add(middleware: BearerAuth(token: token))
        try Dashboard(store: store, config: config, token: token).add(to: router)
        router.post("/v1/jobs") { request, context in try await handlers.submit(request, context) }
        router.get("/v1/jobs") { request, context in try await handlers.list(request, context) }
        router.get("/v1/jobs/:id") { request, context in try await handlers.get(request, context) }
        router.delete("/v1/jobs/:id") { request, context in try await handlers.cancel(request, context) }
        router.put("/v1/uploads/:id") { request, context in try await handlers.upload(request, context) }
        router.get("/v1/workers") { _, _ in try await handlers.workers() }
        router.get("/healthz") { _, _ in try await handlers.health() }
        router.get("/metrics") { _, _ in try await handlers.metricsText() }
        // A documented path asked with a method it does not take: 405 with the methods it does.
        let documented = Dictionary(grouping: routes, by: \.path).mapValues { $0.map(\.method) }
        for (path, methods) in documented {
            let allow = methods.sorted().joined(separator: ", ")
            let routerPath = RouterPath(path.replacingOccurrences(of: "{id}", with: ":id"))
            for method in [HTTPRequest.Method.get, .post, .put, .delete, .patch, .options, .trace, HTTPRequest.Method("QUERY")!] where !methods.contains(method.rawValue) {
                router.on(routerPath, method: method) { _, _ -> Response in
                    var headers = HTTPFields()
                    headers[.allow] = allow
                    throw HTTPError(.methodNotAllowed, headers: headers, message: "\(method.rawValue) is not allowed here; allowed: \(allow)")
                }
            }
        }

        var configuration = ApplicationConfiguration(address: .hostname(config.host, port: config.port), serverName: "coursepack")
        configuration.reuseAddress = true
        var services: [any Service] = [webhooks]
        if let runner { services.insert(runner, at: 0) }
        // A store with work of its own (PostgreSQL's connection pool and listener) runs in the same
        // group, first, so that a graceful shutdown stops it after the runner and webhooks.
        if let service = store as? any Service { services.insert(service, at: 0) }
        return Application(router: router, configuration: configuration, services: services,
                           onServerRunning: { channel in
                               logger.notice("coursepack serve listening on \(channel.localAddress?.description ?? "?")")
                           }, logger: logger)
    }

    static func uploadsFolder(_ config: ServerConfig) -> String {
        URL(fileURLWithPath: config.dataDirectory).appendingPathComponent("uploads").path
    }

    /// A job as JSON, with its lecture.json inlined as `lecture`.
    static func body(_ job: Job) throws -> Data {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            var c = encoder.singleValueContainer()
            try c.encode(f.string(from: date))
        }
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let base = try encoder.encode(job)
        guard let lecture = job.lectureJSON, var object = try JSONSerialization.jsonObject(with: base) as? [String: Any],
              let inlined = try? JSONSerialization.jsonObject(with: Data(lecture.utf8)) else { return base }
        object["lecture"] = inlined
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    }

    static func realPath(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }
}

/// Checks `Authorization: Bearer TOKEN` in constant time on every route but /healthz and the
/// operator's pages (/ui/, which take the token once at their login form).
struct BearerAuth<Context: RequestContext>: RouterMiddleware {
    let token: [UInt8]

    init(token: String) { self.token = Array(token.utf8) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // The operator's pages have their own sessions (Dashboard).
        if request.uri.path == "/healthz" || request.uri.path == "/ui" || request.uri.path.hasPrefix("/ui/") {
            return try await next(request, context)
        }
        let given = request.headers[.authorization].flatMap { h in h.hasPrefix("Bearer ") ? Array(h.utf8.dropFirst(7)) : nil } ?? []
        guard Self.matches(given, token) else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "missing or wrong bearer token")
        }
        return try await next(request, context)
    }

    /// Whether `given` is the token, in time that depends on the token's length only.
    static func matches(_ given: [UInt8], _ token: [UInt8]) -> Bool {
        var diff = UInt8(given.count == token.count ? 0 : 1)
        for i in 0..<token.count { diff |= token[i] ^ (i < given.count ? given[i] : 0) }
        return diff == 0
    }
}

/// Builds the spec a job carries: its package folder under the output root, the preset's text and
/// the limits of this server's config.
struct SpecMaker: Sendable {
    let config: ServerConfig
    let presets: [String: String]

    func spec(for job: Job) -> JobSpec? {
        guard let preset = presets[job.preset] else { return nil }
        let destination = URL(fileURLWithPath: config.outputRoot).appendingPathComponent(job.courseId).appendingPathComponent(job.lectureId)
        return JobSpec(destination: destination.path, preset: preset, timeoutSeconds: config.timeoutSeconds > 0 ? config.timeoutSeconds : nil,
                       stallTimeoutSeconds: config.stallTimeoutSeconds, memoryLimitMB: config.memoryLimitMB,
                       maxAttempts: config.maxAttempts, retryBaseSeconds: config.retryBaseSeconds)
    }
}

/// The route handlers; validation errors are 400 with a message naming the field.
struct Handlers: Sendable {
    let store: any JobStore
    let config: ServerConfig
    let specs: SpecMaker
    let runner: JobRunner?
    let metrics: ServerMetrics
    let inputRoots: [String]

    static let idPattern = "^[a-z0-9][a-z0-9_-]{0,63}$"
    static let uploadPattern = "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"

    struct Submission: Decodable {
        var source: String?
        var upload: String?
        var courseId: String
        var lectureId: String
        var title: String?
        var preset: String?
        var captions: [Job.Caption]?
        var callbackUrl: String?
        var language: String?
    }

    func submit(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let body = try await request.body.collect(upTo: config.maxRequestBytes)
        let s: Submission
        do {
            s = try JSONDecoder().decode(Submission.self, from: Data(body.readableBytesView))
        } catch let DecodingError.keyNotFound(key, _) {
            throw HTTPError(.badRequest, message: "\(key.stringValue): is required")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw HTTPError(.badRequest, message: "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): wrong type")
        } catch {
            throw HTTPError(.badRequest, message: "the body must be a JSON object (docs/openapi.json, Submission)")
        }
        for (field, value) in [("courseId", s.courseId), ("lectureId", s.lectureId)] where value.range(of: Self.idPattern, options: .regularExpression) == nil {
            throw HTTPError(.badRequest, message: "\(field): must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit")
        }
        if let t = s.title, t.count > 500 { throw HTTPError(.badRequest, message: "title: at most 500 characters") }
        let preset = s.preset ?? config.presets[0]
        guard specs.presets[preset] != nil else {
            throw HTTPError(.badRequest, message: "preset: \(preset) is not offered (offered: \(config.presets.joined(separator: ", ")))")
        }
        let source: String
        switch (s.source, s.upload) {
        case let (path?, nil):
            source = try confine(path, field: "source")
        case let (nil, id?):
            guard id.range(of: Self.uploadPattern, options: .regularExpression) != nil else {
                throw HTTPError(.badRequest, message: "upload: not a valid upload id")
            }
            guard let u = try await store.upload(id) else { throw HTTPError(.badRequest, message: "upload: no upload \(id)") }
            source = u.path
        default:
            throw HTTPError(.badRequest, message: "source: give exactly one of source (a path under an input root) and upload (an upload id)")
        }
        let captions = try (s.captions ?? []).enumerated().map { i, c in
            guard c.language.map({ CaptionInput(argument: "x:\($0)").language == $0 }) ?? true else {
                throw HTTPError(.badRequest, message: "captions[\(i)].language: not a language tag such as en or pt-BR")
            }
            return Job.Caption(path: try confine(c.path, field: "captions[\(i)].path"), language: c.language)
        }
        guard captions.count <= 32 else { throw HTTPError(.badRequest, message: "captions: at most 32") }
        if let l = s.language {
            if let problem = SpeechOptions.languageProblem(l) { throw HTTPError(.badRequest, message: "language: \(problem)") }
            guard config.asrModel != nil else {
                throw HTTPError(.badRequest, message: "language: this server makes no captions from speech (no asrModel in its config)")
            }
        }
        if let cb = s.callbackUrl {
            guard let u = URL(string: cb), ["http", "https"].contains(u.scheme?.lowercased() ?? ""), u.host?.isEmpty == false, cb.count <= 2000 else {
                throw HTTPError(.badRequest, message: "callbackUrl: must be an http or https URL")
            }
            let target = WebhookTarget(allowedHosts: config.webhookAllowedHosts)
            let checked = try? await onOwnThread(seconds: 5) { Swift.Result { try target.check(u) } }
            if case let .failure(e)? = checked, let refused = e as? WebhookTarget.Refused, !refused.description.contains("does not resolve") {
                throw HTTPError(.badRequest, message: "callbackUrl: \(refused.description)")
            }
        }
        let now = Date()
        var job = Job(id: "job_" + Self.randomID(), state: .queued, courseId: s.courseId, lectureId: s.lectureId, title: s.title,
                      source: source, upload: s.upload, preset: preset, captions: captions, callbackUrl: s.callbackUrl, progress: 0,
                      attempts: 0, createdAt: now, updatedAt: now, startedAt: nil, finishedAt: nil, error: nil, package: nil,
                      webhook: nil, lectureJSON: nil)
        job.spec = specs.spec(for: job)
        if let model = config.asrModel { job.spec?.speech = SpeechOptions(model: model, language: s.language) }
        switch try await store.insert(job, queueLimit: config.queueLimit) {
        case .queueFull:
            throw HTTPError(.tooManyRequests, headers: [.retryAfter: "30"], message: "the queue holds \(config.queueLimit) jobs; try again later")
        case .inserted:
            return try json(API.body(job), status: .accepted, headers: [.location: "/v1/jobs/\(job.id)"])
        }
    }

    func get(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try jobID(context)
        guard let job = try await store.job(id) else { throw HTTPError(.notFound, message: "no job \(id)") }
        return try json(API.body(job))
    }

    func list(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let q = request.uri.queryParameters
        var state: Job.State?
        if let raw = q["state"].map(String.init) {
            guard let s = Job.State(rawValue: raw) else {
                throw HTTPError(.badRequest, message: "state: one of \(Job.State.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            state = s
        }
        let limit = try q["limit"].map { raw -> Int in
            guard let n = Int(String(raw)), (1...500).contains(n) else { throw HTTPError(.badRequest, message: "limit: 1-500") }
            return n
        } ?? 50
        let after = q["after"].map(String.init)
        let jobs = try await store.list(state: state, after: after, limit: limit + 1)
        let page = Array(jobs.prefix(limit))
        var object: [String: Any] = ["jobs": try page.map { try JSONSerialization.jsonObject(with: API.body($0)) }]
        if jobs.count > limit, let last = page.last { object["next"] = last.id }
        return try json(JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))
    }

    /// Cancels a job: a queued one at once; a running one's worker is stopped (SIGTERM, then SIGKILL)
    /// and its temporary output removed. Answers 200 once cancelled, 202 if still stopping.
    func cancel(_ request: Request, _ context: some RequestContext) async throws -> Response {
        let id = try jobID(context)
        guard let state = try await store.requestCancel(id) else { throw HTTPError(.notFound, message: "no job \(id)") }
        switch state {
        case .succeeded, .failed:
            throw HTTPError(.conflict, message: "job \(id) has already \(state.rawValue)")
        case .running:
            runner?.cancelLocally(id)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline, try await store.job(id, withLecture: false)?.state == .running {
                try await Task.sleep(for: .milliseconds(100))
            }
        default:
            break
        }
        guard let job = try await store.job(id, withLecture: false) else { throw HTTPError(.notFound, message: "no job \(id)") }
        return try json(API.body(job), status: job.state == .cancelled ? .ok : .accepted)
    }

    /// Streams the body to a file in the uploads folder, never holding it in memory; over the size
    /// limit the upload is refused with 413 and nothing is kept.
    func upload(_ request: Request, _ context: some RequestContext) async throws -> Response {
        guard let id = context.parameters.get("id"), id.range(of: Self.uploadPattern, options: .regularExpression) != nil else {
            throw HTTPError(.badRequest, message: "id: 1-64 of A-Z, a-z, 0-9, '-' and '_'")
        }
        if let length = request.headers[.contentLength].flatMap(Int.init), length > config.maxUploadBytes {
            throw HTTPError(.contentTooLarge, message: "uploads are limited to \(config.maxUploadBytes) bytes")
        }
        let folder = URL(fileURLWithPath: API.uploadsFolder(config))
        let final = folder.appendingPathComponent(id)
        let partial = folder.appendingPathComponent(".\(id).partial-\(UUID().uuidString.prefix(8))")
        guard FileManager.default.createFile(atPath: partial.path, contents: nil), let handle = FileHandle(forWritingAtPath: partial.path) else {
            throw HTTPError(.internalServerError, message: "cannot write the upload")
        }
        var total = 0
        do {
            for try await chunk in request.body {
                total += chunk.readableBytes
                if total > config.maxUploadBytes {
                    throw HTTPError(.contentTooLarge, message: "uploads are limited to \(config.maxUploadBytes) bytes")
                }
                try chunk.withUnsafeReadableBytes { try handle.write(contentsOf: $0) }
            }
            // fsync of a large file can take seconds: not on a cooperative thread.
            let synced: Result<Void, any Error> = await onOwnThread { Result { try handle.synchronize(); try handle.close() } }
            try synced.get()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(at: partial)
            throw error
        }
        guard total > 0 else {
            try? FileManager.default.removeItem(at: partial)
            throw HTTPError(.badRequest, message: "the upload is empty")
        }
        guard rename(partial.path, final.path) == 0 else {
            try? FileManager.default.removeItem(at: partial)
            throw HTTPError(.internalServerError, message: "cannot store the upload")
        }
        try await store.addUpload(id: id, path: final.path, bytes: total)
        let body = try JSONSerialization.data(withJSONObject: ["id": id, "bytes": total], options: [.sortedKeys])
        return try json(body, status: .created)
    }

    /// 200 when the job store answers within 2 s, else 503 (a load balancer takes the server out).
    func health() async throws -> Response {
        let store = self.store
        do {
            _ = try await withDeadline(seconds: 2) { try await store.counts() }
        } catch {
            let reason = error is DeadlineExceeded ? "the job store did not answer within 2 s" : "the job store cannot be read"
            return try json(Data(#"{"status":"unavailable","reason":"\#(reason)"}"#.utf8), status: .serviceUnavailable)
        }
        return try json(Data(#"{"status":"ok"}"#.utf8))
    }

    /// The workers that ran or run jobs on this store, from their heartbeats.
    func workers() async throws -> Response {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        struct Page: Encodable { var workers: [WorkerRecord] }
        return try json(encoder.encode(Page(workers: try await store.workers())))
    }

    func metricsText() async throws -> Response {
        let text = metrics.text(counts: try await store.counts(), workers: try await store.workers())
        return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    // MARK: helpers

    private func jobID(_ context: some RequestContext) throws -> String {
        guard let id = context.parameters.get("id"), id.range(of: "^job_[a-z0-9]{20}$", options: .regularExpression) != nil else {
            throw HTTPError(.notFound, message: "no such job")
        }
        return id
    }

    /// A source or caption path: absolute, without `..`, and inside an input root after resolving
    /// symlinks, and a regular file.
    private func confine(_ path: String, field: String) throws -> String {
        guard path.hasPrefix("/") else { throw HTTPError(.badRequest, message: "\(field): must be an absolute path") }
        guard !path.split(separator: "/").contains("..") else { throw HTTPError(.badRequest, message: "\(field): must not contain ..") }
        guard let real = API.realPath(path) else { throw HTTPError(.badRequest, message: "\(field): no such file: \(path)") }
        guard inputRoots.contains(where: { real.hasPrefix($0.hasSuffix("/") ? $0 : $0 + "/") }) else {
            throw HTTPError(.badRequest, message: "\(field): \(path) is outside the input roots")
        }
        // A regular file, opened the way a run opens it (a FIFO would block the run's reader).
        do { _ = try FileIdentity.of(real) } catch let e as CoursePackError {
            throw HTTPError(.badRequest, message: "\(field): \(path): \(e.reason)")
        }
        return real
    }

    private func json(_ data: Data, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func randomID() -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<20).map { _ in alphabet.randomElement()! })
    }
}
