import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import LectureModel
import Logging
import ServiceLifecycle

/// Delivers each finished job to its callback URL: a POST of the job as GET /v1/jobs/{id} shows it,
/// signed with `X-CoursePack-Signature: sha256=HMAC` when a webhook secret is configured, retried with exponential backoff until the receiver answers 2xx or the tries run out. The queue
/// of deliveries is in the job store, so a restart goes on where it stopped.
final class Webhooks: Service, Sendable {
    let store: any JobStore
    let config: ServerConfig
    let metrics: ServerMetrics
    let logger: Logger
    let session: URLSession
    let secret: String?
    let target: WebhookTarget

    init(store: any JobStore, config: ServerConfig, secret: String?, metrics: ServerMetrics, logger: Logger) {
        self.secret = secret
        self.store = store
        self.config = config
        self.metrics = metrics
        self.logger = logger
        let c = URLSessionConfiguration.ephemeral
        c.timeoutIntervalForRequest = 15
        c.timeoutIntervalForResource = 30
        session = URLSession(configuration: c, delegate: NoRedirects(), delegateQueue: nil)
        target = WebhookTarget(allowedHosts: config.webhookAllowedHosts)
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Held for a minute: no other server sends these meanwhile.
                let due = (try? await self.store.claimWebhooks(limit: 16, lease: 60)) ?? []
                await withTaskGroup(of: Void.self) { group in
                    for job in due { group.addTask { await self.deliver(job) } }
                }
                try? await Task.sleep(for: .milliseconds(due.isEmpty ? 250 : 10))
            }
        }
    }

    private func deliver(_ job: Job) async {
        guard let urlString = job.callbackUrl, let url = URL(string: urlString) else { return }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("coursepack-webhook", forHTTPHeaderField: "User-Agent")
        request.setValue(job.id, forHTTPHeaderField: "X-CoursePack-Job")
        let body = (try? API.body(job)) ?? Data()
        request.httpBody = body
        // Receivers check that the body comes from this server: HMAC-SHA256 of the body under the shared secret.
        if let secret { request.setValue("sha256=" + Hashing.hmacSHA256Hex(key: secret, data: body), forHTTPHeaderField: "X-CoursePack-Signature") }
        let attempt = (job.webhook?.attempts ?? 0) + 1
        var failure: String?
        let target = self.target
        do {
            // Checked before every try: a name may resolve elsewhere since the job was submitted.
            try await onOwnThread(seconds: 10) { Swift.Result { try target.check(url) } }.get()
            let status = try await post(request)
            if !(200..<300).contains(status) { failure = "receiver answered \(status)" }
        } catch let e as WebhookTarget.Refused {
            failure = e.description
        } catch {
            // One message for every way of not getting an answer (refused, reset, timed out, no
            // route): which one it was would tell a caller what listens on the server's network.
            failure = error is DeadlineExceeded ? "resolving the callback host took over 10 s" : "no HTTP answer from the receiver"
        }
        if let failure {
            let last = attempt >= config.webhookAttempts
            let delay = config.webhookRetryBaseSeconds * pow(2, Double(attempt - 1))
            try? await store.webhookResult(job.id, delivered: false, error: failure, retryAfter: last ? nil : min(delay, 3600))
            metrics.webhook(last ? "failed" : "retry")
            logger.warning("webhook for job \(job.id) to \(url.host ?? "?"), try \(attempt): \(failure)\(last ? "; giving up" : "")")
        } else {
            try? await store.webhookResult(job.id, delivered: true, error: nil, retryAfter: nil)
            metrics.webhook("delivered")
        }
    }

    /// Answers redirects with the 3xx itself, never following it.
    final class NoRedirects: NSObject, URLSessionTaskDelegate, @unchecked Sendable {  // no state
        func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void) {
            completionHandler(nil)
        }
    }

    /// The receiver's HTTP status.
    private func post(_ request: URLRequest) async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            session.dataTask(with: request) { _, response, error in
                if let error { continuation.resume(throwing: error) } else {
                    continuation.resume(returning: (response as? HTTPURLResponse)?.statusCode ?? 0)
                }
            }.resume()
        }
    }
}
