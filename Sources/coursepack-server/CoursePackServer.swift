import ArgumentParser
import CommandSupport
import LectureModel

/// The job server's program: `serve` and `worker` (docs/SERVER.md). A product of its own, so that the
/// single-file commands (`coursepack`) build without the server's dependencies (Hummingbird, NIO,
/// PostgresNIO, GRDB); `coursepack serve` and `coursepack worker` run this program.
@main
struct CoursePackServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coursepack-server",
        abstract: "Run CoursePack's job server: the HTTP API (serve) and workers on other machines (worker).",
        discussion: """
        Exit codes: 0 success, 64 usage or config error, 70 internal error, 73 output not writable.
        Each lecture runs in a `coursepack` process: the one built beside this program.
        """,
        subcommands: [Serve.self, WorkerCommand.self]
    )
}

/// The `coursepack` program that runs each lecture: the one in this program's folder.
enum LectureProgram {
    static func path() throws -> String {
        guard let p = Executable.sibling("coursepack") else {
            throw CoursePackError(.internal, path: Executable.path ?? CommandLine.arguments[0],
                                  "cannot find the coursepack program beside this one to run lectures with (make build builds both)")
        }
        return p
    }
}
