package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Reads the files of a package as hostile input: a path is relative to the package root, and every
/// folder on it and the file itself is opened without following a symbolic link (`openat` with
/// `O_NOFOLLOW`, one component at a time), so nothing outside the root is read however the package
/// was put together; only regular files, each up to a size cap.
package struct PackageFiles {
    package struct Refusal: Error, CustomStringConvertible {
        package let description: String
    }

    /// Caps on what one file may hold, far above what CoursePack writes: a media playlist takes ~40
    /// bytes a segment, 2.4 MB for 100 hours of 6-s segments; a 6-s 1080p segment is a few MB.
    package enum Limit {
        package static let playlist = 16 << 20
        package static let initSegment = 16 << 20
        package static let segment = 256 << 20
        package static let subtitle = 16 << 20
    }

    package let root: URL

    package init(root: URL) { self.root = root }

    /// The file's bytes, or why they are refused.
    package func read(_ relative: String, limit: Int) throws -> Data {
        let fd = try open(relative)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Refusal(description: "\(relative): cannot stat (\(errnoText()))") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw Refusal(description: "\(relative): not a regular file") }
        guard Int(st.st_size) <= limit else {
            throw Refusal(description: "\(relative): \(st.st_size) bytes, more than the \(limit >> 20) MB this validator reads")
        }
        var data = Data(count: Int(st.st_size))
        var got = 0
        try data.withUnsafeMutableBytes { buf in
            while got < buf.count {
                let n = Glibc.read(fd, buf.baseAddress! + got, buf.count - got)
                if n < 0, errno == EINTR { continue }
                guard n >= 0 else { throw Refusal(description: "\(relative): cannot read (\(errnoText()))") }
                if n == 0 { break }
                got += n
            }
        }
        guard got == data.count else { throw Refusal(description: "\(relative): changed size while read") }
        return data
    }

    /// The size of a regular file, under the same rules as `read`.
    package func size(_ relative: String) throws -> Int {
        let fd = try open(relative)
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { throw Refusal(description: "\(relative): not a regular file") }
        return Int(st.st_size)
    }

    package func text(_ relative: String, limit: Int = Limit.playlist) throws -> String {
        guard let s = String(data: try read(relative, limit: limit), encoding: .utf8) else {
            throw Refusal(description: "\(relative): not UTF-8 text")
        }
        return s
    }

    /// `relative` resolved against the folder of `base` (a path relative to the root), refusing
    /// absolute, remote and parent (`..`) references.
    package static func join(_ base: String, _ relative: String) throws -> String {
        guard !relative.isEmpty, !relative.hasPrefix("/"), !relative.contains("://"), !relative.contains("\0"),
              !relative.split(separator: "/").contains("..") else {
            throw Refusal(description: "\(relative): not a path inside the package")
        }
        let folder = base.split(separator: "/").dropLast().joined(separator: "/")
        return folder.isEmpty ? relative : folder + "/" + relative
    }

    /// The kind of a file that is not a regular one, for messages.
    package static func kind(_ mode: mode_t) -> String {
        switch mode & S_IFMT {
        case S_IFIFO: return "a FIFO"
        case S_IFDIR: return "a folder"
        case S_IFCHR, S_IFBLK: return "a device"
        case S_IFSOCK: return "a socket"
        default: return "not a regular file"
        }
    }

    fileprivate func open(_ relative: String) throws -> Int32 {
        let parts = relative.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        guard !parts.isEmpty, !relative.hasPrefix("/"), !parts.contains("..") else {
            throw Refusal(description: "\(relative): not a path inside the package")
        }
        var dir = Glibc.open(root.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dir >= 0 else { throw Refusal(description: "\(root.path): cannot open the package folder (\(errnoText()))") }
        for (i, part) in parts.enumerated() {
            let last = i == parts.count - 1
            let flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | (last ? 0 : O_DIRECTORY)
            let fd = openat(dir, String(part), flags)
            let err = errno
            close(dir)
            guard fd >= 0 else {
                if err == ELOOP || (err == ENOTDIR && !last && isLink(parts[...i])) {
                    throw Refusal(description: "\(relative): \(parts[...i].joined(separator: "/")) is a symbolic link; refused")
                }
                throw Refusal(description: "\(relative): cannot open (\(String(cString: strerror(err))))")
            }
            dir = fd
        }
        return dir
    }

    private func isLink(_ parts: ArraySlice<Substring>) -> Bool {
        var st = stat()
        return lstat(root.appendingPathComponent(parts.joined(separator: "/")).path, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK
    }

    private func errnoText() -> String { String(cString: strerror(errno)) }
}

/// A regular file as found at one moment: the same identity later means the same file, unchanged.
public struct FileIdentity: Equatable, Sendable {
    public var device: UInt64
    public var inode: UInt64
    public var size: Int64
    public var modified: Int64

    /// Opens the absolute `path` as PackageFiles opens a package's files (no symbolic link anywhere
    /// on it, without blocking on a FIFO) and returns the identity of the regular file there; throws
    /// a bad-input error naming the path otherwise.
    public static func of(_ path: String) throws -> FileIdentity {
        guard path.hasPrefix("/") else { throw CoursePackError(.badInput, path: path, "not an absolute path") }
        let fd: Int32
        do { fd = try PackageFiles(root: URL(fileURLWithPath: "/")).open(String(path.dropFirst())) } catch let r as PackageFiles.Refusal {
            throw CoursePackError(.badInput, path: path, r.description)
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw CoursePackError(.badInput, path: path, "cannot read its attributes") }
        guard st.st_mode & S_IFMT == S_IFREG else {
            throw CoursePackError(.badInput, path: path, "\(PackageFiles.kind(st.st_mode)), not a regular file; refused")
        }
        return FileIdentity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                            modified: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }
}
