public import ArgumentParser
public import Foundation
public import Logging

/// Options every command takes.
public struct Common: ParsableArguments {
    @Flag(name: .shortAndLong, help: "Log FFmpeg's warnings and CoursePack's details to stderr.")
    public var verbose = false

    public init() {}
}

/// Logging for the long-running commands (serve, worker): info and up to stderr, debug with -v.
public func serviceLogger(_ label: String, verbose: Bool) -> Logger {
    LoggingSystem.bootstrap { label in
        var h = StreamLogHandler.standardError(label: label)
        h.logLevel = verbose ? .debug : .info
        return h
    }
    return Logger(label: label)
}

/// The programs' own files: `coursepack` starts lecture workers as itself, and `coursepack-server`
/// starts them as the `coursepack` built beside it.
public enum Executable {
    /// This program's own file.
    public static var path: String? {
        if let p = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return p }
        let arg = CommandLine.arguments[0]
        return arg.hasPrefix("/") ? arg : nil
    }

    /// The program called `name` in this program's folder, when it is there and executable.
    public static func sibling(_ name: String) -> String? {
        guard let own = path else { return nil }
        let p = URL(fileURLWithPath: own).deletingLastPathComponent().appendingPathComponent(name).path
        return FileManager.default.isExecutableFile(atPath: p) ? p : nil
    }
}
