import Foundation
import Lecture

/// Places a package made in a worker's scratch folder into the shared output root. Staging copies it
/// next to its destination under a hidden name (`.LECTURE.staging-HOST-PID-RANDOM`); placing renames
/// it into place, so readers see the old package or the new one, never a half. Placing runs inside the
/// store's fenced finish.
enum Publication {
    static var host: String { ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_") }

    /// Moves (same file system) or copies the finished package to a hidden folder beside `destination`.
    static func stage(_ made: URL, beside destination: URL) throws -> URL {
        let fm = FileManager.default
        let parent = destination.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw CoursePackError(.output, path: parent.path, "cannot create: \(error.localizedDescription)")
        }
        removeDeadStaging(for: destination)
        let staged = parent.appendingPathComponent(
            ".\(destination.lastPathComponent).staging-\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        if rename(made.path, staged.path) == 0 { return staged }
        guard errno == EXDEV else {
            throw CoursePackError(.output, path: staged.path, "cannot move the package here: \(String(cString: strerror(errno)))")
        }
        do {
            try fm.copyItem(at: made, to: staged)
        } catch {
            try? fm.removeItem(at: staged)
            throw CoursePackError(.output, path: staged.path, "cannot copy the package here: \(error.localizedDescription)")
        }
        return staged
    }

    /// Renames the staged package into place, replacing what was there.
    static func place(_ staged: URL, at destination: URL) throws {
        let fm = FileManager.default
        var old: URL?
        if fm.fileExists(atPath: destination.path) {
            let aside = destination.deletingLastPathComponent()
                .appendingPathComponent(".\(destination.lastPathComponent).replaced-\(host)-\(getpid())")
            try? fm.removeItem(at: aside)
            guard rename(destination.path, aside.path) == 0 else {
                throw CoursePackError(.output, path: destination.path, "cannot replace: \(String(cString: strerror(errno)))")
            }
            old = aside
        }
        guard rename(staged.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            if let old { _ = rename(old.path, destination.path) }
            throw CoursePackError(.output, path: destination.path, "cannot move the package into place: \(reason)")
        }
        if let old { try? fm.removeItem(at: old) }
    }

    static func discard(_ staged: URL) {
        if FileManager.default.fileExists(atPath: staged.path) { try? FileManager.default.removeItem(at: staged) }
    }

    /// Staging folders of this lecture left by a process of this host that is gone (killed while
    /// copying). Other hosts' processes cannot be checked from here; their own runs clean up after them.
    static func removeDeadStaging(for destination: URL) {
        let parent = destination.deletingLastPathComponent()
        let prefix = ".\(destination.lastPathComponent).staging-\(host)-"
        for name in (try? FileManager.default.contentsOfDirectory(atPath: parent.path)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix { $0.isNumber }), pid > 0 else { continue }
            if kill(pid, 0) == -1, errno == ESRCH { try? FileManager.default.removeItem(at: parent.appendingPathComponent(name)) }
        }
    }
}

/// A runner's private folder under a machine's scratch root: `ROOT/run-PID-RANDOM`, held by an
/// exclusive lock on its `.lock` file while the process lives. Folders whose lock is free belong to
/// processes that are gone and are removed when the next runner starts.
enum Scratch {
    static func claim(root: URL) throws -> URL {
        let fm = FileManager.default
        do {
            try fm.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw CoursePackError(.usage, path: root.path, "cannot create the scratch folder: \(error.localizedDescription)")
        }
        for name in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where name.hasPrefix("run-") {
            let folder = root.appendingPathComponent(name)
            let fd = open(folder.appendingPathComponent(".lock").path, O_RDWR | O_CLOEXEC)
            if fd < 0 {
                // No lock file: a process between making its folder and locking it, or one that died
                // there. Only an old one is removed.
                let made = (try? fm.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date) ?? Date()
                if Date().timeIntervalSince(made) > 60 { try? fm.removeItem(at: folder) }
                continue
            }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { try? fm.removeItem(at: folder) }
            close(fd)
        }
        let mine = root.appendingPathComponent("run-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        try fm.createDirectory(at: mine, withIntermediateDirectories: true)
        // Held until the process exits (the descriptor is never closed).
        let fd = open(mine.appendingPathComponent(".lock").path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            throw CoursePackError(.usage, path: mine.path, "cannot lock the scratch folder")
        }
        return mine
    }
}
