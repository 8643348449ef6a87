import Foundation
import Prometheus

/// The server's Prometheus metrics (GET /metrics). Job counts by state and the queue depth are read
/// from the store at each scrape, so they hold across restarts and servers.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let byState: [Job.State: Gauge]
    private let queueDepth: Gauge
    private let busy: Gauge
    private let workerRuns: Counter
    private let finishedCounters: [String: Counter]
    private let duration: ValueHistogram
    private let realtime: ValueHistogram
    private let webhooks: [String: Counter]

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        byState = Dictionary(uniqueKeysWithValues: Job.State.allCases.map { s in
            (s, registry.makeGauge(name: "coursepack_jobs", labels: [("state", s.rawValue)], help: "Jobs in the store by state."))
        })
        queueDepth = registry.makeGauge(name: "coursepack_queue_depth", help: "Jobs waiting to run.")
        busy = registry.makeGauge(name: "coursepack_workers_busy", help: "Worker processes running now on this server.")
        workerRuns = registry.makeCounter(name: "coursepack_worker_runs_total", help: "Worker processes started by this server.")
        finishedCounters = Dictionary(uniqueKeysWithValues: ["succeeded", "failed", "retried", "cancelled", "superseded"].map { o in
            (o, registry.makeCounter(name: "coursepack_job_runs_finished_total", labels: [("outcome", o)],
                                     help: "Job runs ended on this server, by outcome."))
        })
        duration = registry.makeValueHistogram(name: "coursepack_job_duration_seconds",
                                               buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
                                               help: "Wall-clock seconds of successful job runs.")
        realtime = registry.makeValueHistogram(name: "coursepack_job_realtime_factor", buckets: [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64],
                                               help: "Seconds of media made per wall-clock second, for successful job runs.")
        webhooks = Dictionary(uniqueKeysWithValues: ["delivered", "retry", "failed"].map { r in
            (r, registry.makeCounter(name: "coursepack_webhook_attempts_total", labels: [("result", r)], help: "Webhook POSTs by result."))
        })
    }

    func workerStarted() {
        workerRuns.increment()
        busy.increment()
    }

    func workerEnded() { busy.decrement() }

    func finished(_ outcome: String, seconds: Double, mediaSeconds: Double?) {
        finishedCounters[outcome]?.increment()
        guard outcome == "succeeded" else { return }
        duration.record(seconds)
        if let m = mediaSeconds, seconds > 0 { realtime.record(m / seconds) }
    }

    func webhook(_ result: String) { webhooks[result]?.increment() }

    func text(counts: [Job.State: Int], workers: [WorkerRecord]) -> String {
        for (s, g) in byState { g.set(Double(counts[s] ?? 0)) }
        queueDepth.set(Double(counts[.queued] ?? 0))
        for state in [WorkerRecord.State.active, .lost, .stopped] {
            registry.makeGauge(name: "coursepack_workers", labels: [("state", state.rawValue)],
                               help: "Workers seen in the last day, by state (lost: heartbeat older than its lease).")
                .set(Double(workers.filter { $0.state == state }.count))
        }
        let now = Date()
        for w in workers {
            let labels = [("worker", w.id), ("name", w.name), ("host", w.host)]
            registry.makeGauge(name: "coursepack_worker_heartbeat_age_seconds", labels: labels, help: "Seconds since a worker's last heartbeat.")
                .set(now.timeIntervalSince(w.lastHeartbeat))
            registry.makeGauge(name: "coursepack_worker_jobs_running", labels: labels, help: "Lectures a worker runs now.")
                .set(Double(w.running))
            registry.makeGauge(name: "coursepack_worker_jobs_finished", labels: labels, help: "Job runs a worker has ended since it started.")
                .set(Double(w.finished))
        }
        return registry.emitToString()
    }
}
