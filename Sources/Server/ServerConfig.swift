import Foundation
import LectureModel

/// `coursepack serve --config FILE`: a JSON object; every field has a default (docs/SERVER.md).
public struct ServerConfig: Codable, Sendable {
    /// Address and port to listen on.
    public var host = "127.0.0.1"
    public var port = 8080
    /// Folders that job sources and caption files must lie under (after resolving symlinks).
    public var inputRoots: [String] = []
    /// Packages are written to OUTPUT_ROOT/COURSE_ID/LECTURE_ID.
    public var outputRoot = "packages"
    /// Where the job database, uploads and the source hash cache live.
    public var dataDirectory = "coursepack-data"
    /// File holding the API token; the environment variable COURSEPACK_API_TOKEN wins over it.
    public var tokenFile: String?
    /// File holding the secret that signs webhook bodies; $COURSEPACK_WEBHOOK_SECRET wins over it.
    /// Without one, webhooks are sent unsigned.
    public var webhookSecretFile: String?
    /// The shared job store: a postgres:// URL (several servers and `coursepack worker`s on one
    /// queue). Without it, jobs are kept in SQLite in the data folder and run by this server alone.
    /// $COURSEPACK_DATABASE_URL and `serve --database` win over it.
    public var database: String?
    /// This machine's folder for packages being made (default: DATA/scratch); local disk is best.
    public var scratchDirectory: String?
    /// A CTranslate2 Whisper model folder, at the same path on every machine that runs jobs: every
    /// job gets captions and a transcript from its speech (docs/SPEECH.md); nil: none.
    public var asrModel: String?
    /// Lectures this server encodes at once; 0 (with a database only) makes it an API server that
    /// leaves the work to `coursepack worker`s.
    public var workers = 1
    /// Seconds between looks for work when no notification comes.
    public var pollSeconds = 5.0
    /// Jobs waiting to run before submissions are answered 429.
    public var queueLimit = 1000
    /// Largest upload, bytes.
    public var maxUploadBytes = 20_000_000_000
    /// Largest JSON request body, bytes.
    public var maxRequestBytes = 65_536
    /// Presets a job may name (from the Presets folder); the first is the default.
    public var presets = ["lecture", "minimal"]
    /// Tries of a job whose failure is not the input's fault (worker crashed, hung, ran out of time or memory).
    public var maxAttempts = 3
    /// First retry delay, seconds; doubled for each further try.
    public var retryBaseSeconds = 10.0
    /// A running job's lease: renewed every 2 s (every third of a shorter lease); a job whose lease ran out is run again.
    public var leaseSeconds = 60.0
    /// Seconds running jobs get to finish on SIGTERM before they are stopped and queued again.
    public var shutdownGraceSeconds = 60.0
    /// Webhook delivery: tries, and the first retry delay (doubled each time).
    /// Callback hosts that may resolve to loopback, private or link-local addresses (by default
    /// none may: a caller's URL must not reach the server's own network).
    public var webhookAllowedHosts: [String] = []
    public var webhookAttempts = 10
    public var webhookRetryBaseSeconds = 5.0
    /// Per-lecture limits, as for batches.
    public var timeoutSeconds = 14_400.0
    public var stallTimeoutSeconds = 300.0
    public var memoryLimitMB = 3000
    /// The operator's pages (/ui/): a session ends after this many seconds without a request.
    public var uiSessionIdleSeconds = 1800.0

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(Mirror(reflecting: ServerConfig()).children.compactMap(\.label))
        if let unknown = c.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw DecodingError.dataCorrupted(.init(codingPath: [AnyKey(unknown)], debugDescription: "unknown field"))
        }
        let d = ServerConfig()
        func v<T: Decodable>(_ key: String, _ fallback: T) throws -> T { try c.decodeIfPresent(T.self, forKey: AnyKey(key)) ?? fallback }
        host = try v("host", d.host)
        port = try v("port", d.port)
        inputRoots = try v("inputRoots", d.inputRoots)
        outputRoot = try v("outputRoot", d.outputRoot)
        dataDirectory = try v("dataDirectory", d.dataDirectory)
        tokenFile = try v("tokenFile", d.tokenFile)
        webhookSecretFile = try v("webhookSecretFile", d.webhookSecretFile)
        database = try v("database", d.database)
        scratchDirectory = try v("scratchDirectory", d.scratchDirectory)
        asrModel = try v("asrModel", d.asrModel)
        workers = try v("workers", d.workers)
        pollSeconds = try v("pollSeconds", d.pollSeconds)
        queueLimit = try v("queueLimit", d.queueLimit)
        maxUploadBytes = try v("maxUploadBytes", d.maxUploadBytes)
        maxRequestBytes = try v("maxRequestBytes", d.maxRequestBytes)
        presets = try v("presets", d.presets)
        maxAttempts = try v("maxAttempts", d.maxAttempts)
        retryBaseSeconds = try v("retryBaseSeconds", d.retryBaseSeconds)
        leaseSeconds = try v("leaseSeconds", d.leaseSeconds)
        shutdownGraceSeconds = try v("shutdownGraceSeconds", d.shutdownGraceSeconds)
        webhookAllowedHosts = try v("webhookAllowedHosts", d.webhookAllowedHosts)
        webhookAttempts = try v("webhookAttempts", d.webhookAttempts)
        webhookRetryBaseSeconds = try v("webhookRetryBaseSeconds", d.webhookRetryBaseSeconds)
        timeoutSeconds = try v("timeoutSeconds", d.timeoutSeconds)
        stallTimeoutSeconds = try v("stallTimeoutSeconds", d.stallTimeoutSeconds)
        memoryLimitMB = try v("memoryLimitMB", d.memoryLimitMB)
        uiSessionIdleSeconds = try v("uiSessionIdleSeconds", d.uiSessionIdleSeconds)
    }

    /// Reads and checks a config file; errors name the file and the field.
    /// `database` (from `serve --database`) wins over the file and the environment.
    public static func load(_ path: String, database: String? = nil) throws -> ServerConfig {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw CoursePackError(.usage, path: path, "cannot read: \(error.localizedDescription)")
        }
        var config: ServerConfig
        do {
            config = try JSONDecoder().decode(ServerConfig.self, from: data)
        } catch let DecodingError.dataCorrupted(ctx) where !ctx.codingPath.isEmpty {
            throw CoursePackError(.usage, path: path, "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)")
        } catch let DecodingError.typeMismatch(_, ctx) {
            throw CoursePackError(.usage, path: path, "\(ctx.codingPath.map(\.stringValue).joined(separator: ".")): wrong type")
        } catch {
            throw CoursePackError(.usage, path: path, "not a valid config: \(error)")
        }
        // Relative folders are relative to the config file.
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func absolute(_ p: String) -> String { p.hasPrefix("/") ? p : base.appendingPathComponent(p).standardizedFileURL.path }
        config.inputRoots = config.inputRoots.map(absolute)
        config.outputRoot = absolute(config.outputRoot)
        config.dataDirectory = absolute(config.dataDirectory)
        config.tokenFile = config.tokenFile.map(absolute)
        config.webhookSecretFile = config.webhookSecretFile.map(absolute)
        config.scratchDirectory = config.scratchDirectory.map(absolute)
        config.asrModel = config.asrModel.map(absolute)
        if let url = ProcessInfo.processInfo.environment["COURSEPACK_DATABASE_URL"], !url.isEmpty { config.database = url }
        if let database { config.database = database }
        try config.check(path)
        return config
    }

    func check(_ path: String) throws {
        func fail(_ field: String, _ why: String) -> CoursePackError { CoursePackError(.usage, path: path, "\(field): \(why)") }
        guard (0...65535).contains(port) else { throw fail("port", "must be 0-65535 (0: any free port)") }
        guard !inputRoots.isEmpty else { throw fail("inputRoots", "name at least one folder that sources may come from") }
        for r in inputRoots where !FileManager.default.fileExists(atPath: r) { throw fail("inputRoots", "no such folder: \(r)") }
        guard ((database == nil ? 1 : 0)...64).contains(workers) else {
            throw fail("workers", database == nil ? "must be 1-64 (0 only with a database: jobs would never run)" : "must be 0-64")
        }
        guard pollSeconds >= 0.05 else { throw fail("pollSeconds", "must be at least 0.05") }
        guard uiSessionIdleSeconds >= 1, uiSessionIdleSeconds <= 7 * 86400 else { throw fail("uiSessionIdleSeconds", "must be between 1 and 604800") }
        if let database { _ = try DatabaseURL(database) }
        guard queueLimit >= 1, maxUploadBytes >= 1, maxRequestBytes >= 1024 else { throw fail("queueLimit", "limits must be positive") }
        guard !presets.isEmpty else { throw fail("presets", "name at least one preset") }
        if let m = asrModel, let problem = SpeechOptions.modelProblem(m) { throw fail("asrModel", "\(m): \(problem)") }
        guard maxAttempts >= 1, webhookAttempts >= 1 else { throw fail("maxAttempts", "must be at least 1") }
        guard leaseSeconds >= 1, retryBaseSeconds >= 0, webhookRetryBaseSeconds >= 0, shutdownGraceSeconds >= 0 else {
            throw fail("leaseSeconds", "times must not be negative")
        }
    }

    /// The API token: $COURSEPACK_API_TOKEN, else the first line of tokenFile. Never logged.
    public func token() throws -> String {
        guard let t = try secret(environment: "COURSEPACK_API_TOKEN", file: tokenFile, what: "API token") else {
            throw CoursePackError(.usage, path: "serve", "no API token: set COURSEPACK_API_TOKEN or tokenFile in the config")
        }
        return t
    }

    /// The webhook signing secret: $COURSEPACK_WEBHOOK_SECRET, else the first line of webhookSecretFile.
    public func webhookSecret() throws -> String? {
        try secret(environment: "COURSEPACK_WEBHOOK_SECRET", file: webhookSecretFile, what: "webhook secret")
    }

    private func secret(environment name: String, file: String?, what: String) throws -> String? {
        if let t = ProcessInfo.processInfo.environment[name], !t.isEmpty {
            guard t.count >= 16 else { throw CoursePackError(.usage, path: name, "the \(what) must have at least 16 characters") }
            return t
        }
        guard let file else { return nil }
        guard let text = try? String(contentsOfFile: file, encoding: .utf8),
              let line = text.split(whereSeparator: \.isNewline).first.map(String.init)?.trimmingCharacters(in: .whitespaces),
              line.count >= 16 else {
            throw CoursePackError(.usage, path: file, "cannot read a \(what) of at least 16 characters")
        }
        return line
    }
}

struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
