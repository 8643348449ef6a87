import ArgumentParser
import CommandSupport
import Foundation
import LectureModel
import Logging
import Server

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP job API for an upload server (docs/SERVER.md).",
        discussion: """
        Jobs are kept in SQLite under the config's dataDirectory, or in PostgreSQL with --database (or
        the config's database, or $COURSEPACK_DATABASE_URL), where several servers and `coursepack
        worker`s on other machines share them. Each lecture runs in a worker process.
        The API token comes from $COURSEPACK_API_TOKEN or the config's tokenFile. SIGTERM stops
        accepting requests, gives running jobs shutdownGraceSeconds, and queues the rest again.
        """)

    @Option(help: "The server config (JSON); without it, ./coursepack-server.json.")
    var config: String = "coursepack-server.json"

    @Option(help: "A postgres:// URL: keep jobs in PostgreSQL, shared with other servers and workers (docs/SERVER.md).")
    var database: String?

    @OptionGroup var common: Common

    func run() async throws {
        let logger = serviceLogger("coursepack.serve", verbose: common.verbose)
        do {
            let cfg = try ServerConfig.load(config, database: database)
            let executable = try LectureProgram.path()
            var presets: [String: URL] = [:]
            for name in cfg.presets {
                let url = try PresetLocator.url(name)
                _ = try Preset.load(url)
                presets[name] = url
            }
            try await API.serve(config: cfg, executable: executable, presets: presets, logger: logger)
        } catch let e as CoursePackError {
            Output.stderr("coursepack: \(e.description)")
            throw ExitCode(e.category.exitCode)
        }
    }
}
