import Foundation

/// An error a user sees: one line naming the file and the reason, and its category (the command line
/// maps each category to an exit code).
public struct CoursePackError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure; the command line maps each to an exit code, the server and the batch
    /// report it by name.
    public enum Category: String, Sendable, Codable, CaseIterable {
        /// The command line or a preset is wrong.
        case usage
        /// The input is missing, unreadable, refused or not decodable.
        case badInput
        /// The output cannot be written.
        case output
        /// Stopped by a signal or a deadline.
        case interrupted
        /// A failure inside CoursePack or FFmpeg that the input does not explain.
        case `internal`
    }

    public let category: Category
    /// The file the error is about.
    public let path: String
    public let reason: String

    public init(_ category: Category, path: String, _ reason: String) {
        self.category = category
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// Why a lecture or a job failed, as the batch, `manifest.json` and the server's JSON name it: the
/// categories of `CoursePackError`, which a worker reports, and what the process watching a worker
/// can see happen to it.
public enum FailureCategory: String, Sendable, Codable, CaseIterable {
    case usage, badInput, output, interrupted, `internal`
    /// The worker died of a signal.
    case crashed
    /// The worker made no progress for the stall timeout.
    case hung
    /// The worker ran past the per-lecture timeout.
    case timeout
    /// The worker went over its memory limit.
    case memory
    /// The disk the package was being written to is full; the reason names the disk. Another run
    /// meets the same disk, so it is not retried: an operator clears the disk and retries the job.
    case diskFull

    public init(_ category: CoursePackError.Category) {
        switch category {
        case .usage: self = .usage
        case .badInput: self = .badInput
        case .output: self = .output
        case .interrupted: self = .interrupted
        case .internal: self = .internal
        }
    }

    /// Failures that another run may not meet (a crash, a stall); bad input, a bad request or a full
    /// disk fails the same way every time.
    public var isTransient: Bool {
        switch self {
        case .crashed, .hung, .timeout, .memory, .internal, .output, .interrupted: return true
        case .usage, .badInput, .diskFull: return false
        }
    }
}

/// Creates a folder and its parents like `mkdir -p`, failing with the system's reason
/// ("Not a directory", "Permission denied"), which Foundation's error on Linux does not carry.
public func createFolder(_ path: String) throws {
    var current = ""
    for part in path.split(separator: "/", omittingEmptySubsequences: true) {
        current += "/" + part
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: current, isDirectory: &isDir) {
            guard isDir.boolValue else { throw CoursePackError(.output, path: path, "cannot create output folder: \(current) is not a folder") }
            continue
        }
        if mkdir(current, 0o755) != 0 && errno != EEXIST {
            throw CoursePackError(.output, path: path, "cannot create output folder: \(String(cString: strerror(errno)))")
        }
    }
}
