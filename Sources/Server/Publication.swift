import CLinux
import Foundation
import LectureModel

/// Places a package made in a worker's scratch folder into the shared output root. Staging copies it
/// next to its destination under a hidden name (`.LECTURE.staging-HOST-PID-RANDOM`); placing swaps it
/// with the published package in one atomic rename (`renameat2` RENAME_EXCHANGE), so readers see the
/// old package or the new one, never a half and never nothing, and a process killed at any point
/// leaves the published package whole. The staging name then holds the replaced package, removed
/// once the run's end is recorded.
///
/// Hidden folders beside a package are left by processes killed mid-way; `removeLeftovers` handles
/// them by rule: a folder of this host whose process is gone is removed (a `.replaced-` one is first
/// renamed back when the package itself is missing); another host's is removed once it is older
/// than `foreignAge`, since its process cannot be checked from here.
enum Publication {
    static var host: String { ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_") }
    /// Age after which another host's leftover folder is taken as abandoned.
    static let foreignAge: TimeInterval = 6 * 3600

    /// Moves (same file system) or copies the finished package to a hidden folder beside `destination`.
    static func stage(_ made: URL, beside destination: URL) throws -> URL {
        let fm = FileManager.default
        let parent = destination.deletingLastPathComponent()
        do {
            try fm.createDirectory(at: parent, withIntermediateDirectories: true)
        } catch {
            throw CoursePackError(.output, path: parent.path, "cannot create: \(error.localizedDescription)")
        }
        removeLeftovers(for: destination)
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

    /// Debug builds (the tests') pause here with COURSEPACK_TEST_PAUSE=POINT:SECONDS[,...], so fault
    /// tests can kill the process or cut its database at a known step; a release build ignores it.
    static func testPause(_ point: String) {
        #if DEBUG
        guard let spec = ProcessInfo.processInfo.environment["COURSEPACK_TEST_PAUSE"] else { return }
        for item in spec.split(separator: ",") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, parts[0] == point, let seconds = Double(parts[1]) else { continue }
            FileHandle.standardError.write(Data("test pause at \(point)\n".utf8))
            Thread.sleep(forTimeInterval: seconds)
        }
        #endif
    }

    /// Debug builds only: COURSEPACK_TEST_NO_EXCHANGE=1 takes the path of a file system that cannot exchange.
    static var canExchange: Bool {
        #if DEBUG
        return ProcessInfo.processInfo.environment["COURSEPACK_TEST_NO_EXCHANGE"] == nil
        #else
        return true
        #endif
    }

    /// Puts the staged package in place. Returns the folder that now holds the replaced package
    /// (to remove once the run's end is recorded), or nil when there was none.
    static func place(_ staged: URL, at destination: URL) throws -> URL? {
        if cp_rename_noreplace(staged.path, destination.path) == 0 { return nil }
        guard errno == EEXIST else {
            throw CoursePackError(.output, path: destination.path, "cannot move the package into place: \(String(cString: strerror(errno)))")
        }
        testPause("before-exchange")
        if canExchange {
            if cp_rename_exchange(staged.path, destination.path) == 0 { return staged }
        } else {
            errno = EINVAL
        }
        guard errno == EINVAL || errno == ENOSYS else {
            throw CoursePackError(.output, path: destination.path, "cannot replace: \(String(cString: strerror(errno)))")
        }
        // A file system that cannot exchange (some network ones): rename the old package aside, then
        // the new one in. A kill between the two leaves `.replaced-`, which removeLeftovers renames back.
        let aside = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).replaced-\(host)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        guard rename(destination.path, aside.path) == 0 else {
            throw CoursePackError(.output, path: destination.path, "cannot replace: \(String(cString: strerror(errno)))")
        }
        testPause("between-renames")
        guard rename(staged.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(aside.path, destination.path)
            throw CoursePackError(.output, path: destination.path, "cannot move the package into place: \(reason)")
        }
        return aside
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

    /// The hidden folders a publisher makes beside `destination`: staging copies and replaced packages.
    static func isLeftover(_ name: String, of lecture: String) -> Bool {
        name.hasPrefix(".\(lecture).staging-") || name.hasPrefix(".\(lecture).replaced-")
    }

    /// Restores or removes, by the rule above, what killed publishers left beside `destination`.
    static func removeLeftovers(for destination: URL) {
        let fm = FileManager.default
        let parent = destination.deletingLastPathComponent()
        let lecture = destination.lastPathComponent
        for name in (try? fm.contentsOfDirectory(atPath: parent.path)) ?? [] where isLeftover(name, of: lecture) {
            let folder = parent.appendingPathComponent(name)
            guard isAbandoned(name, lecture: lecture, folder: folder) else { continue }
            if name.hasPrefix(".\(lecture).replaced-"), !fm.fileExists(atPath: destination.path),
               cp_rename_noreplace(folder.path, destination.path) == 0 {
                continue
            }
            try? fm.removeItem(at: folder)
        }
    }

    /// Every lecture's leftovers under an output root (ROOT/COURSE/.LECTURE.*).
    static func removeLeftovers(under root: URL) {
        let fm = FileManager.default
        for course in (try? fm.contentsOfDirectory(atPath: root.path)) ?? [] where !course.hasPrefix(".") {
            let dir = root.appendingPathComponent(course)
            var lectures: Set<String> = []
            for name in (try? fm.contentsOfDirectory(atPath: dir.path)) ?? [] where name.hasPrefix(".") {
                for marker in [".staging-", ".replaced-"] {
                    if let r = name.range(of: marker) { lectures.insert(String(name[name.index(after: name.startIndex)..<r.lowerBound])) }
                }
            }
            for lecture in lectures { removeLeftovers(for: dir.appendingPathComponent(lecture)) }
        }
    }

    /// A leftover's owner is gone: a process of this host that no longer exists, or another host's
    /// folder older than `foreignAge`.
    private static func isAbandoned(_ name: String, lecture: String, folder: URL) -> Bool {
        for marker in [".\(lecture).staging-", ".\(lecture).replaced-"] where name.hasPrefix(marker) {
            let owner = name.dropFirst(marker.count)
            let mine = "\(host)-"
            if owner.hasPrefix(mine), let pid = Int32(owner.dropFirst(mine.count).prefix { $0.isNumber }), pid > 0 {
                return kill(pid, 0) == -1 && errno == ESRCH
            }
            let made = (try? FileManager.default.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date) ?? Date()
            return Date().timeIntervalSince(made) > foreignAge
        }
        return false
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
