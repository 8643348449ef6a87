package import Foundation
import CLinux
#if canImport(Glibc)
import Glibc
#endif

/// A hidden folder beside a package, `.LECTURE.KIND-HOST-PID-NONCE`: the one naming of everything a
/// publisher leaves next to a lecture's folder while it works. Which process on which machine made it
/// is in the name, so whoever finds it later can tell whether its maker is still at work.
package struct HiddenFolder: Equatable, Sendable {
    package enum Kind: String, CaseIterable, Sendable {
        /// A package being written in place (`coursepack transcode`).
        case partial
        /// A finished package copied beside its destination, waiting to be placed (the job server).
        case staging
        /// A published package set aside while its successor is renamed in (file systems that cannot
        /// exchange two names atomically).
        case replaced
    }

    /// The lecture folder's name (the destination's last component).
    package let lecture: String
    package let kind: Kind
    package let host: String
    package let pid: Int32
    package let nonce: UInt32

    package var name: String { ".\(lecture).\(kind.rawValue)-\(host)-\(pid)-\(nonce)" }

    /// A new name of this process for `lecture`.
    package static func new(_ kind: Kind, for lecture: String) -> HiddenFolder {
        HiddenFolder(lecture: lecture, kind: kind, host: Publishing.host, pid: getpid(), nonce: UInt32.random(in: 0...UInt32.max))
    }

    package init(lecture: String, kind: Kind, host: String, pid: Int32, nonce: UInt32) {
        self.lecture = lecture
        self.kind = kind
        self.host = host
        self.pid = pid
        self.nonce = nonce
    }

    /// Reads a name, or nil when it is not one of these. Names written before the host was part of
    /// them (`.ID.partial-PID-NONCE`, `.ID.old-PID`) read as this host's, `old` as `replaced`.
    package init?(name: String) {
        guard name.hasPrefix("."), name.count > 1 else { return nil }
        let markers: [(String, Kind)] = Kind.allCases.map { (".\($0.rawValue)-", $0) } + [(".old-", .replaced)]
        // The lecture's own name may hold dots and dashes: the last marker in the name is the one.
        guard let (range, kind) = markers.compactMap({ m in name.range(of: m.0, options: .backwards).map { ($0, m.1) } })
            .max(by: { $0.0.lowerBound < $1.0.lowerBound }), range.lowerBound > name.startIndex else { return nil }
        let lecture = String(name[name.index(after: name.startIndex)..<range.lowerBound])
        let parts = name[range.upperBound...].split(separator: "-", omittingEmptySubsequences: false).map(String.init)
        guard !lecture.isEmpty, !parts.isEmpty, parts.allSatisfy({ !$0.isEmpty }) else { return nil }
        if parts.count >= 3, let pid = Int32(parts[parts.count - 2]), let nonce = UInt32(parts[parts.count - 1]), pid > 0 {
            self.init(lecture: lecture, kind: kind, host: parts.dropLast(2).joined(separator: "-"), pid: pid, nonce: nonce)
        } else if parts.count <= 2, let pid = Int32(parts[0]), pid > 0, parts.count == 1 || UInt32(parts[1]) != nil {
            self.init(lecture: lecture, kind: kind, host: Publishing.host, pid: pid, nonce: parts.count == 2 ? UInt32(parts[1])! : 0)
        } else {
            return nil
        }
    }

    /// Whether its maker is gone: a process of this host that no longer exists, or, since another
    /// host's process cannot be checked from here, another host's folder older than `foreignAge`.
    package func isAbandoned(at folder: URL, foreignAge: TimeInterval = Publishing.foreignAge) -> Bool {
        if host == Publishing.host { return kill(pid, 0) == -1 && errno == ESRCH }
        let made = (try? FileManager.default.attributesOfItem(atPath: folder.path)[.modificationDate] as? Date) ?? Date()
        return Date().timeIntervalSince(made) > foreignAge
    }
}

/// How a package is put in place, for the command line, the batch and the job server alike, and the
/// one rule for what a killed publisher leaves.
///
/// Placing renames the finished package's hidden folder onto the destination when there is none;
/// over a published package it swaps the two in one atomic rename (`renameat2` RENAME_EXCHANGE), so
/// readers see the old package or the new one, never a half and never nothing, and a kill at any
/// point leaves a whole package in place. On a file system that cannot exchange, the old package is
/// renamed aside (`replaced`) and the new one in: a kill between the two renames leaves no package,
/// and the rule below puts the old one back.
///
/// The rule for leftovers (`removeLeftovers`): a hidden folder whose maker is gone
/// (`HiddenFolder.isAbandoned`) is removed, except a `replaced` one whose lecture has no package,
/// which is renamed back into place. Folders of live processes are left alone.
package enum Publishing {
    package static var host: String { ProcessInfo.processInfo.hostName.replacingOccurrences(of: "/", with: "_") }
    /// Age after which another host's leftover folder is taken as abandoned.
    package static let foreignAge: TimeInterval = 6 * 3600

    /// Debug builds (the tests') pause here with COURSEPACK_TEST_PAUSE=POINT:SECONDS[,...], so fault
    /// tests can kill the process at a known step; a release build ignores it.
    package static func testPause(_ point: String) {
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

    /// Puts the finished package in `folder` (a hidden folder beside `destination`) in place. Returns
    /// the folder that now holds the replaced package (to remove when convenient), or nil when there
    /// was none.
    package static func place(_ folder: URL, at destination: URL) throws -> URL? {
        if cp_rename_noreplace(folder.path, destination.path) == 0 { return nil }
        guard errno == EEXIST else {
            throw CoursePackError(.output, path: destination.path, "cannot move the package into place: \(String(cString: strerror(errno)))")
        }
        testPause("before-exchange")
        if canExchange {
            if cp_rename_exchange(folder.path, destination.path) == 0 { return folder }
        } else {
            errno = EINVAL
        }
        guard errno == EINVAL || errno == ENOSYS else {
            throw CoursePackError(.output, path: destination.path, "cannot replace: \(String(cString: strerror(errno)))")
        }
        let aside = destination.deletingLastPathComponent()
            .appendingPathComponent(HiddenFolder.new(.replaced, for: destination.lastPathComponent).name)
        guard rename(destination.path, aside.path) == 0 else {
            throw CoursePackError(.output, path: destination.path, "cannot replace: \(String(cString: strerror(errno)))")
        }
        testPause("between-renames")
        guard rename(folder.path, destination.path) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(aside.path, destination.path)
            throw CoursePackError(.output, path: destination.path, "cannot move the package into place: \(reason)")
        }
        return aside
    }

    /// Applies the rule to the hidden folders of one lecture, beside `destination`.
    package static func removeLeftovers(for destination: URL) {
        removeLeftovers(in: destination.deletingLastPathComponent(), lecture: destination.lastPathComponent)
    }

    /// Applies the rule to every lecture's hidden folders in `parent` (or to `lecture`'s alone).
    package static func removeLeftovers(in parent: URL, lecture: String? = nil) {
        let fm = FileManager.default
        for name in (try? fm.contentsOfDirectory(atPath: parent.path)) ?? [] {
            guard let hidden = HiddenFolder(name: name), lecture == nil || hidden.lecture == lecture else { continue }
            let folder = parent.appendingPathComponent(name)
            guard hidden.isAbandoned(at: folder) else { continue }
            if hidden.kind == .replaced,
               cp_rename_noreplace(folder.path, parent.appendingPathComponent(hidden.lecture).path) == 0 {
                continue
            }
            try? fm.removeItem(at: folder)
        }
    }

    /// Every lecture's leftovers under an output root (ROOT/COURSE/.LECTURE.*).
    package static func removeLeftovers(under root: URL) {
        for course in (try? FileManager.default.contentsOfDirectory(atPath: root.path)) ?? [] where !course.hasPrefix(".") {
            removeLeftovers(in: root.appendingPathComponent(course))
        }
    }

    package static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        return ns.localizedDescription
    }
}

/// Builds a package in a hidden folder beside its destination (`partial`) and puts it in place only
/// when complete (`Publishing.place`), so a failed or interrupted run leaves no destination folder,
/// and an existing one is replaced only on success. Before it starts, what killed runs left beside
/// the destination is restored or removed by `Publishing`'s rule.
package final class Publisher {
    package let destination: URL
    package let workDirectory: URL
    private var published = false

    package init(destination path: String) throws {
        destination = URL(fileURLWithPath: path).standardizedFileURL
        let parent = destination.deletingLastPathComponent()
        let fm = FileManager.default
        try createFolder(parent.path)
        Publishing.removeLeftovers(for: destination)
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: destination.path, isDirectory: &isDir), !isDir.boolValue {
            throw CoursePackError(.output, path: destination.path, "exists and is not a folder")
        }
        guard fm.isWritableFile(atPath: parent.path) else {
            throw CoursePackError(.output, path: parent.path, "output folder is not writable")
        }
        workDirectory = parent.appendingPathComponent(HiddenFolder.new(.partial, for: destination.lastPathComponent).name)
        do {
            try fm.createDirectory(at: workDirectory, withIntermediateDirectories: false)
        } catch {
            throw CoursePackError(.output, path: parent.path, "cannot write in output folder: \(Publishing.reason(error))")
        }
    }

    /// Moves the finished package to the destination, replacing what was there.
    package func publish() throws {
        let replaced = try Publishing.place(workDirectory, at: destination)
        published = true
        if let replaced { try? FileManager.default.removeItem(at: replaced) }
    }

    /// Removes the temporary folder of a failed run.
    package func discard() {
        if !published { try? FileManager.default.removeItem(at: workDirectory) }
    }
}
