import ArgumentParser
import CommandSupport
import Foundation
import Lecture
import LectureModel

/// `coursepack serve` and `coursepack worker` run `coursepack-server`, the job server's own program
/// built beside this one (its dependency tree is the server's alone). The process is replaced, so
/// signals, the PID and the exit status are the server's.
enum ServerProgram {
    static func exec(_ command: String, _ arguments: [String]) throws -> Never {
        guard let path = Executable.sibling("coursepack-server") else {
            Output.stderr("coursepack: \(command): the job server's program coursepack-server is not built beside this one (make build builds both)")
            throw ExitCode(CoursePackError.Category.usage.exitCode)
        }
        let argv = [path, command] + arguments
        var cArgs = argv.map { strdup($0) }
        cArgs.append(nil)
        execv(path, cArgs)
        Output.stderr("coursepack: \(command): cannot run \(path): \(String(cString: strerror(errno)))")
        throw ExitCode(CoursePackError.Category.internal.exitCode)
    }
}

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the HTTP job API for an upload server (runs coursepack-server serve; docs/SERVER.md).")

    @Argument(parsing: .allUnrecognized, help: "coursepack-server serve's options (coursepack-server serve --help).")
    var arguments: [String] = []

    func run() throws { try ServerProgram.exec("serve", arguments) }
}

struct WorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run jobs from a PostgreSQL job store shared with `coursepack serve` (runs coursepack-server worker; docs/SERVER.md).")

    @Argument(parsing: .allUnrecognized, help: "coursepack-server worker's options (coursepack-server worker --help).")
    var arguments: [String] = []

    func run() throws { try ServerProgram.exec("worker", arguments) }
}
