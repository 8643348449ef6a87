import Foundation
import Testing

/// A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, a server on a free
/// loopback port (trust authentication, fsync off), stopped when the test process exits. Started once
/// per test process; each test takes a database of its own. Run as the `postgres` user when the
/// tests run as root (the server refuses root).
final class PostgresCluster: @unchecked Sendable {
    let folder: URL
    let port: Int
    let user = "coursepack"
    private let bin: String
    private let lock = NSLock()
    private var databases = 0

    nonisolated(unsafe) static var stopAtExit: [(bin: String, data: String, asPostgres: Bool)] = []
    static let exitLock = NSLock()

    /// A cluster of its own, for a test that stops and starts it (the shared one serves other tests).
    static func dedicated() throws -> PostgresCluster { try PostgresCluster() }

    static let shared: Swift.Result<PostgresCluster, Support.FixtureError> = {
        do { return .success(try PostgresCluster()) } catch let e as Support.FixtureError { return .failure(e) } catch {
            return .failure(.init(description: "\(error)"))
        }
    }()

    static func get() throws -> PostgresCluster { try shared.get() }

    private static var asPostgres: Bool { getuid() == 0 }

    private init() throws {
        let fm = FileManager.default
        guard let version = (try? fm.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .compactMap(Int.init).max() else {
            throw Support.FixtureError(description: "PostgreSQL's server programs are missing (make test-deps installs postgresql)")
        }
        bin = "/usr/lib/postgresql/\(version)/bin"
        folder = URL(fileURLWithPath: "/tmp").appendingPathComponent("coursepack-pg-\(getpid())-\(UUID().uuidString.prefix(6))")
        try fm.createDirectory(at: folder, withIntermediateDirectories: true)
        port = try Self.freePort()
        if Self.asPostgres {
            _ = try Support.run("chown", ["postgres:postgres", folder.path])
        }
        let data = folder.appendingPathComponent("data").path
        let r = try run("\(bin)/initdb", ["-D", data, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"])
        guard r.status == 0 else { throw Support.FixtureError(description: "initdb failed: \(r.stderr)") }
        try start()
        let first = Self.exitLock.withLock {
            Self.stopAtExit.append((bin, data, Self.asPostgres))
            return Self.stopAtExit.count == 1
        }
        guard first else { return }
        atexit {
            for s in PostgresCluster.stopAtExit {
                let pgctl = ["\(s.bin)/pg_ctl", "-D", s.data, "-m", "immediate", "stop"]
                let argv = s.asPostgres ? ["-u", "postgres", "--"] + pgctl : Array(pgctl.dropFirst())
                (try? Child(s.asPostgres ? "/usr/sbin/runuser" : pgctl[0], argv))?.wait(timeout: 30)
            }
        }
    }

    /// Runs a PostgreSQL program, as `postgres` when the tests run as root.
    private func run(_ program: String, _ arguments: [String]) throws -> Support.Result {
        if Self.asPostgres { return try Support.run("/usr/sbin/runuser", ["-u", "postgres", "--", program] + arguments) }
        return try Support.run(program, arguments)
    }

    func start() throws {
        let data = folder.appendingPathComponent("data").path
        let arguments = ["-D", data, "-l", folder.appendingPathComponent("server.log").path, "-w", "-t", "60", "-o",
                         "-p \(port) -k \(folder.path) -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", "start"]
        // The server inherits pg_ctl's output: a file, not a pipe that would stay open while it runs;
        // and (Child) no other descriptor of this process.
        let program = Self.asPostgres ? "/usr/sbin/runuser" : "\(bin)/pg_ctl"
        let argv = (Self.asPostgres ? ["-u", "postgres", "--", "\(bin)/pg_ctl"] : []) + arguments
        let out = folder.appendingPathComponent("pg_ctl.out")
        try? FileManager.default.removeItem(at: out)
        let child = try Child(program, argv, stdout: .file(out), stderr: .file(out))
        guard child.wait(timeout: 120), child.status == 0 else {
            throw Support.FixtureError(description: "pg_ctl start failed: \((try? String(contentsOf: out, encoding: .utf8)) ?? "")")
        }
    }

    /// Stops the server at once (as a crash would look to its clients).
    func stop() throws {
        let r = try run("\(bin)/pg_ctl", ["-D", folder.appendingPathComponent("data").path, "-m", "immediate", "-w", "stop"])
        guard r.status == 0 else { throw Support.FixtureError(description: "pg_ctl stop failed: \(r.stderr)") }
    }

    /// A new empty database; returns its URL.
    func createDatabase(_ hint: String = "t") throws -> String {
        let n = lock.withLock { databases += 1; return databases }
        let name = "\(hint.lowercased().filter { $0.isLetter || $0.isNumber }.prefix(40))_\(n)"
        _ = try sql("CREATE DATABASE \(name)")
        return url(name)
    }

    func url(_ database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Runs SQL with psql; returns its unaligned, tuples-only output.
    @discardableResult
    func sql(_ statement: String, database: String = "postgres") throws -> String {
        let r = try Support.run("psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)",
                                         "-U", user, "-d", database, "-c", statement])
        guard r.status == 0 else { throw Support.FixtureError(description: "psql failed: \(r.stderr)") }
        return r.stdout
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { p -> Bool in
                bind(fd, p, len) == 0 && getsockname(fd, p, &len) == 0
            }
        }
        guard bound else { throw Support.FixtureError(description: "no free port") }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
