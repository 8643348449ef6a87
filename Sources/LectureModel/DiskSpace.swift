public import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The file system holding a folder: where it is mounted and how much of it this user may still
/// fill. A full disk is named by these, so an operator knows which disk to clear.
public struct DiskSpace: Sendable, CustomStringConvertible {
    /// The folder asked about.
    public let folder: String
    /// The top of the file system holding `folder` (the mount point).
    public let mountPoint: String
    /// Bytes this user may still write, and the file system's size.
    public let available: UInt64
    public let size: UInt64

    /// The file system holding `folder` (or its nearest existing parent); nil if none can be read.
    public static func of(_ folder: URL) -> DiskSpace? {
        var path = folder.standardizedFileURL.path
        var st = stat()
        while stat(path, &st) != 0 {
            guard path != "/" else { return nil }
            path = (path as NSString).deletingLastPathComponent
        }
        var fs = statvfs()
        guard statvfs(path, &fs) == 0 else { return nil }
        // The mount point: the highest parent on the same device.
        var top = path
        while top != "/" {
            let parent = (top as NSString).deletingLastPathComponent
            var ps = stat()
            guard stat(parent, &ps) == 0, ps.st_dev == st.st_dev else { break }
            top = parent
        }
        // A file system (FUSE, say) may report any counts: the products saturate instead of trapping.
        func bytes(_ blocks: UInt) -> UInt64 {
            let (product, overflow) = UInt64(blocks).multipliedReportingOverflow(by: UInt64(fs.f_frsize))
            return overflow ? .max : product
        }
        return DiskSpace(folder: folder.path, mountPoint: top, available: bytes(fs.f_bavail), size: bytes(fs.f_blocks))
    }

    /// Less than 1 MB left for this user.
    public var isFull: Bool { available < 1 << 20 }

    /// "the disk mounted at /srv (40.0 GB, 2.1 MB free now)"
    public var description: String {
        "the disk mounted at \(mountPoint) (\(Self.bytes(size)), \(Self.bytes(available)) free now)"
    }

    static func bytes(_ n: UInt64) -> String {
        let units = ["B", "KB", "MB", "GB", "TB"]
        var value = Double(n)
        var unit = 0
        while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }

    /// The one-line reason for a package that did not fit: which disk, what was being written where,
    /// and what the write met.
    public static func fullReason(_ folder: URL, making what: String, _ detail: String? = nil) -> String {
        let disk = DiskSpace.of(folder).map { "\($0)" } ?? "the disk"
        return "disk full: \(disk) ran out of space while writing \(what) in \(folder.path)" + (detail.map { " (\($0))" } ?? "")
    }
}

extension CoursePackError {
    /// Met a full disk (ENOSPC or EDQUOT) somewhere in the write.
    public var isDiskFull: Bool { category == .output && reason.contains(CoursePackError.diskFullReason) }
}
