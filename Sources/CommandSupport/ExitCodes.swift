public import LectureModel

/// The exit codes of README's "Exit codes", owned by the command line (sysexits.h values).
extension CoursePackError.Category {
    public var exitCode: Int32 {
        switch self {
        case .usage: return 64
        case .badInput: return 65
        case .internal: return 70
        case .output: return 73
        case .interrupted: return 75
        }
    }
}
