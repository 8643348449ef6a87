import CLinux
import Foundation
import Lecture

/// A job's source (or caption) file as a run finds it. The path stored at submission is resolved, so
/// it has no symbolic link on its way; a run opens it again the same way, refusing a link anywhere on
/// the path (`O_NOFOLLOW` at every step) and anything but a regular file (a FIFO would block the
/// reader), and keeps the file's identity to check that it is the same file once the package is made.
struct SourceFile: Equatable, Sendable {
    var device: UInt64
    var inode: UInt64
    var size: Int64
    var modified: Int64

    /// Checks `path` as a run reads it; throws a bad-input error naming the file.
    static func check(_ path: String) throws -> SourceFile {
        func refuse(_ reason: String) -> CoursePackError { CoursePackError(.badInput, path: path, reason) }
        guard path.hasPrefix("/") else { throw refuse("not an absolute path") }
        let parts = path.split(separator: "/").map(String.init)
        guard let last = parts.last, !parts.contains("..") else { throw refuse("not a file path") }
        var dir = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw refuse("cannot open /") }
        defer { close(dir) }
        for part in parts.dropLast() {
            let next = openat(dir, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else {
                throw refuse(errno == ELOOP || errno == ENOTDIR
                             ? "\(part) on its path is now a symbolic link or not a folder; refused (the path was checked at submission)"
                             : "cannot open: \(String(cString: strerror(errno)))")
            }
            close(dir)
            dir = next
        }
        // O_NONBLOCK: opening a FIFO for reading must not wait for a writer.
        let fd = openat(dir, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            throw refuse(errno == ELOOP ? "now a symbolic link; refused (the path was checked at submission)"
                                        : "cannot open: \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = cp_file_info()
        guard cp_file_info(fd, &info) == 0 else { throw refuse("cannot read its attributes: \(String(cString: strerror(errno)))") }
        switch UInt8(bitPattern: info.kind) {
        case UInt8(ascii: "f"): break
        case UInt8(ascii: "p"): throw refuse("a FIFO, not a regular file; refused")
        case UInt8(ascii: "d"): throw refuse("a folder, not a regular file")
        case UInt8(ascii: "c"), UInt8(ascii: "b"): throw refuse("a device, not a regular file; refused")
        case UInt8(ascii: "s"): throw refuse("a socket, not a regular file; refused")
        default: throw refuse("not a regular file")
        }
        return SourceFile(device: UInt64(info.device), inode: UInt64(info.inode), size: Int64(info.size), modified: Int64(info.modified_ns))
    }
}
