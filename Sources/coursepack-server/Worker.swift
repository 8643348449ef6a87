import ArgumentParser
import CommandSupport
import Foundation
import LectureModel
import Logging
import Server
import ServiceLifecycle
import UnixSignals

struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run jobs from a PostgreSQL job store shared with `coursepack serve` (docs/SERVER.md, Several machines).",
        discussion: """
        Claims one job at a time per worker slot (FOR UPDATE SKIP LOCKED), runs it in a child process
        with the job's own limits, makes the package in the scratch folder and places it at the job's
        destination. A job carries everything it needs: this command needs only the database. SIGTERM
        stops claiming, gives running jobs --grace seconds, then queues them again.
        """)

    @Option(help: "The job store: a postgres:// URL; $COURSEPACK_DATABASE_URL when not given (keeps the password out of ps).")
    var database: String?

    @Option(help: "Lectures run at once.")
    var workers = 1

    @Option(help: "This worker's name in GET /v1/workers (default: the host name).")
    var name: String?

    @Option(help: "Local folder for packages being made.")
    var scratch = "coursepack-scratch"

    @Option(help: "Seconds a running job's lease lasts without a heartbeat (renewed every 2 s, or every third of a shorter lease).")
    var leaseSeconds = 60.0

    @Option(help: "Seconds between looks for work when no notification comes.")
    var pollSeconds = 5.0

    @Option(help: "Seconds running jobs get to finish on SIGTERM before they are queued again.")
    var grace = 60.0

    @OptionGroup var common: Common

    func run() async throws {
        let logger = serviceLogger("coursepack.worker", verbose: common.verbose)
        do {
            guard let url = database ?? ProcessInfo.processInfo.environment["COURSEPACK_DATABASE_URL"], !url.isEmpty else {
                throw CoursePackError(.usage, path: "worker", "no database: give --database or set COURSEPACK_DATABASE_URL")
            }
            guard (1...64).contains(workers) else { throw CoursePackError(.usage, path: "--workers", "must be 1-64") }
            guard leaseSeconds >= 1, pollSeconds >= 0.05, grace >= 0 else {
                throw CoursePackError(.usage, path: "--lease-seconds", "lease at least 1 s, poll at least 0.05 s, grace not negative")
            }
            let executable = try LectureProgram.path()
            let store = try await PostgresJobStore.open(url: url, logger: logger)
            let settings = RunnerSettings(workers: workers, leaseSeconds: leaseSeconds, shutdownGraceSeconds: grace,
                                          pollSeconds: pollSeconds,
                                          scratch: URL(fileURLWithPath: scratch).standardizedFileURL,
                                          name: name ?? ProcessInfo.processInfo.hostName)
            let runner = JobRunner(store: store, settings: settings, executable: executable, logger: logger)
            logger.notice("coursepack worker \(settings.name) running \(workers) at once from \(store.displayURL)")
            // The store first: a graceful shutdown stops the runner (which requeues what it holds) before it.
            let group = ServiceGroup(configuration: .init(services: [store, runner], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
            try await group.run()
        } catch let e as CoursePackError {
            Output.stderr("coursepack: \(e.description)")
            throw ExitCode(e.category.exitCode)
        }
    }
}
