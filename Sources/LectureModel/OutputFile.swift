package import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A file of the package being written, through the system calls themselves, so a failure keeps the
/// system's reason: ENOSPC or EDQUOT becomes "disk full" at the write that met it, whatever file it was
/// (a playlist, a still, lecture.json), and any other reason is named as the system names it.
package final class OutputFile {
    private var fd: Int32
    package let url: URL

    /// Creates (or truncates) the file.
    package init(creating url: URL) throws {
        self.url = url
        fd = open(url.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw OutputFile.failure(url, "cannot create", errno) }
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    package func append(_ bytes: some DataProtocol) throws {
        for region in bytes.regions {
            try region.withUnsafeBytes { buffer in
                var done = 0
                while done < buffer.count {
                    let n = Glibc.write(fd, buffer.baseAddress! + done, buffer.count - done)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw OutputFile.failure(url, "cannot write", n < 0 ? errno : EIO) }
                    done += n
                }
            }
        }
    }

    /// Closes the file; a deferred write error (NFS, quota) surfaces here.
    package func close() throws {
        let result = Glibc.close(fd)
        let code = errno
        fd = -1
        guard result == 0 else { throw OutputFile.failure(url, "cannot write", code) }
    }

    /// Writes a whole file.
    package static func write(_ bytes: some DataProtocol, to url: URL) throws {
        let file = try OutputFile(creating: url)
        try file.append(bytes)
        try file.close()
    }

    package static func write(_ text: String, to url: URL) throws {
        try write(Data(text.utf8), to: url)
    }

    package static func failure(_ url: URL, _ what: String, _ code: Int32) -> CoursePackError {
        if code == ENOSPC || code == EDQUOT { return .diskFull(url.path) }
        return CoursePackError(.output, path: url.path, "\(what): \(String(cString: strerror(code)))")
    }
}

extension CoursePackError {
    public static let diskFullReason = "disk full (no space left on device)"

    /// The file system holding `path` (or the user's quota on it) is full.
    package static func diskFull(_ path: String) -> CoursePackError {
        CoursePackError(.output, path: path, diskFullReason)
    }
}
