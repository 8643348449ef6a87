import FFmpeg
import LectureModel

/// How FFmpeg's errors become the errors a user sees.
extension CoursePackError {
    /// Classifies an FFmpeg error met while reading `path`: an interrupt, or else the input's fault.
    static func input(_ path: String, _ error: MediaError) -> CoursePackError {
        CoursePackError(error.kind == .interrupted ? .interrupted : .badInput, path: path, error.description)
    }

    /// A failure inside a rendition's thread: its own category when it has one, "disk full" for an
    /// FFmpeg write that met ENOSPC, else internal.
    static func rendition(_ name: String, path: String, _ error: Error) -> CoursePackError {
        switch error {
        case let e as CoursePackError: return e
        case let e as MediaError where e.isNoSpace: return CoursePackError(.output, path: path, "\(diskFullReason) while writing rendition \(name)")
        default: return CoursePackError(.internal, path: path, "rendition \(name): \(error)")
        }
    }
}
