package import Foundation

/// Builds a package in a temporary folder beside its destination and renames it into place only
/// when complete, so a failed or interrupted run leaves no destination folder, and an existing one
/// is replaced only on success.
package final class Publisher {
    package let destination: URL
    package let workDirectory: URL
    private var published = false

    package init(destination path: String) throws {
        destination = URL(fileURLWithPath: path).standardizedFileURL
        let parent = destination.deletingLastPathComponent()
        let fm = FileManager.default
        var isDir: ObjCBool = false
        if fm.fileExists(atPath: destination.path, isDirectory: &isDir), !isDir.boolValue {
            throw CoursePackError(.output, path: destination.path, "exists and is not a folder")
        }
        try createFolder(parent.path)
        guard fm.isWritableFile(atPath: parent.path) else {
            throw CoursePackError(.output, path: parent.path, "output folder is not writable")
        }
        let name = ".\(destination.lastPathComponent).partial-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        workDirectory = parent.appendingPathComponent(name)
        do {
            try fm.createDirectory(at: workDirectory, withIntermediateDirectories: false)
        } catch {
            throw CoursePackError(.output, path: parent.path, "cannot write in output folder: \(Publisher.reason(error))")
        }
    }

    /// Moves the finished package to the destination, replacing what was there.
    package func publish() throws {
        let fm = FileManager.default
        var old: URL?
        if fm.fileExists(atPath: destination.path) {
            let aside = destination.deletingLastPathComponent()
                .appendingPathComponent(".\(destination.lastPathComponent).old-\(ProcessInfo.processInfo.processIdentifier)")
            try? fm.removeItem(at: aside)
            do {
                try fm.moveItem(at: destination, to: aside)
            } catch {
                throw CoursePackError(.output, path: destination.path, "cannot replace existing folder: \(Publisher.reason(error))")
            }
            old = aside
        }
        do {
            try fm.moveItem(at: workDirectory, to: destination)
        } catch {
            if let old { try? fm.moveItem(at: old, to: destination) }
            throw CoursePackError(.output, path: destination.path, "cannot move package into place: \(Publisher.reason(error))")
        }
        published = true
        if let old { try? fm.removeItem(at: old) }
    }

    /// Removes the temporary folder of a failed run.
    package func discard() {
        if !published { try? FileManager.default.removeItem(at: workDirectory) }
    }

    package static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let u = ns.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(u.code)))
        }
        return ns.localizedDescription
    }
}
