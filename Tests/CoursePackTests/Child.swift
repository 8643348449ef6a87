import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A process the tests start: posix_spawn with every descriptor of this process but stdin, stdout and
/// stderr closed in the child, default signal handling and an empty signal mask, and its end seen by
/// `waitpid` on its own pid.
///
/// Foundation's Process is not used: on Linux it learns that a child ended when a socket it shares
/// with the child closes, so a grandchild that holds the socket (a server a test started, a daemon
/// that inherited it) keeps `waitUntilExit` waiting for good; and its pipes are inherited by any
/// process spawned meanwhile from another thread. Tests run in parallel, so both happen.
final class Child: @unchecked Sendable {  // `ended` behind `lock`
    enum Output {
        case null
        case file(URL)
        /// A pipe this process reads: `Child.run` collects it.
        case pipe
    }

    let pid: pid_t
    /// The read ends of the `.pipe` outputs.
    let stdoutPipe: Int32?
    let stderrPipe: Int32?
    private let lock = NSLock()
    private var ended: Int32?

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    /// Starts `executable` (a path, or a name looked up in PATH) with `arguments`; `environment` replaces
    /// this process's environment when given. `group`: the child leads a process group of its own (so a
    /// terminal's Ctrl-C reaches the test process alone, and a test can signal a child's whole group).
    init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
         stdout: Output = .null, stderr: Output = .null, group: Bool = true) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }

        var parentEnds: [Int32] = []
        var childEnds: [Int32] = []
        defer { for fd in childEnds { close(fd) } }
        func setUp(_ output: Output, _ target: Int32) throws -> Int32? {
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
                return nil
            case let .file(url):
                posix_spawn_file_actions_addopen(&actions, target, url.path, O_WRONLY | O_CREAT | O_APPEND, 0o644)
                return nil
            case .pipe:
                var fds: [Int32] = [0, 0]
                guard pipe(&fds) == 0 else { throw SpawnError(description: "pipe: \(String(cString: strerror(errno)))") }
                // (pipe2 is not in Swift's Glibc module; every child these tests start closes what it
                // does not need, so the moment before FD_CLOEXEC does not leak the pipe.)
                for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
                parentEnds.append(fds[0])
                childEnds.append(fds[1])
                // dup2 clears close-on-exec on the copy the child keeps.
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                return fds[0]
            }
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        do {
            stdoutPipe = try setUp(stdout, 1)
            stderrPipe = try setUp(stderr, 2)
        } catch {
            for fd in parentEnds { close(fd) }
            throw error
        }
        Self.closeTheRest(&actions)

        var flags = Int32(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
        if group { flags |= Int32(POSIX_SPAWN_SETPGROUP) }
        posix_spawnattr_setflags(&attributes, Int16(flags))
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for s in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGQUIT, SIGCHLD] { sigaddset(&defaults, s) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        if group { posix_spawnattr_setpgroup(&attributes, 0) }

        let argv = [executable] + arguments
        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var cArgv = argv.map { strdup($0) } + [nil]
        var cEnv = env.map { strdup($0) } + [nil]
        defer {
            for p in cArgv { free(p) }
            for p in cEnv { free(p) }
        }
        var pid: pid_t = 0
        let rc = executable.contains("/")
            ? posix_spawn(&pid, executable, &actions, &attributes, &cArgv, &cEnv)
            : posix_spawnp(&pid, executable, &actions, &attributes, &cArgv, &cEnv)
        guard rc == 0 else {
            for fd in parentEnds { close(fd) }
            throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(rc)))")
        }
        self.pid = pid
    }

    deinit {
        for fd in [stdoutPipe, stderrPipe].compactMap({ $0 }) { close(fd) }
    }

    /// Descriptors 3 and up are closed in the child: glibc's posix_spawn_file_actions_addclosefrom_np
    /// (2.34 and later; not in Swift's Glibc module, so looked up), else each one open now.
    private static func closeTheRest(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
            if closeFrom(&actions, 3) == 0 { return }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
            if let fd = Int32(name), fd > 2 { posix_spawn_file_actions_addclose(&actions, fd) }
        }
    }

    /// Reaps the child if it has ended; never blocks.
    private func poll() -> Int32? {
        lock.withLock {
            if let ended { return ended }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { ended = status } else if r == -1, errno == ECHILD { ended = 0 }
            return ended
        }
    }

    var isRunning: Bool { poll() == nil }

    /// Waits for the end; false if `timeout` seconds passed first.
    @discardableResult
    func wait(timeout: Double? = nil) -> Bool {
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while poll() == nil {
            if let deadline, Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// The exit status, or the number of the signal that ended it (as Foundation's Process reports it).
    var status: Int32 {
        let s = poll() ?? 0
        return s & 0x7f == 0 ? (s >> 8) & 0xff : s & 0x7f
    }

    /// The signal that ended it, if one did.
    var signal: Int32? {
        let s = poll() ?? 0
        return s & 0x7f == 0 ? nil : s & 0x7f
    }

    /// Sends `signal` while the child has not been reaped (its pid cannot have been given to another).
    func send(_ signal: Int32) {
        lock.withLock { if ended == nil { _ = kill(pid, signal) } }
    }

    /// Runs to the end, collecting stdout and stderr. After `timeout` seconds the child is killed; once
    /// it has ended, output is read for at most 10 s more (a grandchild may hold the pipes).
    static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                    timeout: Double = 1800) throws -> (status: Int32, stdout: Data, stderr: Data, timedOut: Bool) {
        let child = try Child(executable, arguments, environment: environment, stdout: .pipe, stderr: .pipe)
        var out = Data(), err = Data()
        var open: [(fd: Int32, isOut: Bool)] = [(child.stdoutPipe!, true), (child.stderrPipe!, false)]
        let deadline = Date().addingTimeInterval(timeout)
        var drainUntil: Date?
        var timedOut = false
        var buffer = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty {
            var fds = open.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let n = Glibc.poll(&fds, nfds_t(fds.count), 100)
            if n > 0 {
                var closed: Set<Int32> = []
                for (i, p) in fds.enumerated() where p.revents != 0 {
                    let got = read(p.fd, &buffer, buffer.count)
                    if got > 0 {
                        if open[i].isOut { out.append(buffer, count: got) } else { err.append(buffer, count: got) }
                    } else if got == 0 || (errno != EINTR && errno != EAGAIN) {
                        closed.insert(p.fd)
                    }
                }
                open.removeAll { closed.contains($0.fd) }
            }
            if drainUntil == nil, !child.isRunning { drainUntil = Date().addingTimeInterval(10) }
            if let drainUntil, Date() > drainUntil { break }
            if !timedOut, Date() > deadline {
                timedOut = true
                child.send(SIGKILL)
            }
        }
        child.wait()
        return (child.status, out, err, timedOut)
    }
}
