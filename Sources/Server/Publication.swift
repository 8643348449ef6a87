import Foundation
import LectureModel

/// Places a package made in a worker's scratch folder into the shared output root: staging copies it
/// next to its destination under a hidden name (`HiddenFolder` `staging`), and `Publishing.place`
/// swaps it in; the rule for what killed runs leave is `Publishing`'s.
enum Publication {
    /// Moves (same file system) or copies the finished package to a hidden folder beside `destination`.
    static func stage(_ made: URL, beside destination: URL) throws -> URL {
        let fm = FileManager.default
        let parent = destination.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw CoursePackError(.output, path: parent.path, "cannot create: \(error.localizedDescription)")
        }
        Publishing.removeLeftovers(for: destination)
        let staged = parent.appendingPathComponent(HiddenFolder.new(.staging, for: destination.lastPathComponent).name)
        if rename(made.path, staged.path) == 0 { return staged }
        guard errno == EXDEV else {
            throw CoursePackError(.output, path: staged.path, "cannot move the package here: \(String(cString: strerror(errno)))")
        }
        do {
            try fm.copyItem(at: made, to: staged)
        } catch {
            try? fm.removeItem(at: staged)
            if isNoSpace(error) || DiskSpace.of(parent)?.isFull == true { throw DiskFull(folder: parent, making: "the package's copy") }
            throw CoursePackError(.output, path: staged.path, "cannot copy the package here: \(error.localizedDescription)")
        }
        return staged
    }

    /// A package that did not fit on its disk; `failure` makes it the job's one clear failure.
    struct DiskFull: Error {
        let folder: URL
        let making: String
    }

    /// Foundation's error for ENOSPC or EDQUOT, as it wraps them.
    static func isNoSpace(_ error: any Error) -> Bool {
        let ns = error as NSError
        if ns.domain == NSCocoaErrorDomain, ns.code == CocoaError.fileWriteOutOfSpace.rawValue { return true }
        for e in [ns, ns.userInfo[NSUnderlyingErrorKey] as? NSError].compactMap({ $0 }) where e.domain == NSPOSIXErrorDomain {
            if e.code == Int(ENOSPC) || e.code == Int(EDQUOT) { return true }
        }
        return false
    }

    /// A failure to stage or place, as a job's error.
    static func failure(_ error: any Error) -> Job.Failure {
        if let e = error as? DiskFull { return .init(category: .diskFull, reason: DiskSpace.fullReason(e.folder, making: e.making)) }
        if let e = error as? CoursePackError { return .init(category: FailureCategory(e.category), reason: e.description) }
        return .init(category: .output, reason: "cannot publish the package: \(error)")
    }

    static func discard(_ folder: URL) {
        if FileManager.default.fileExists(atPath: folder.path) { try? FileManager.default.removeItem(at: folder) }
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
