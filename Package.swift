// swift-tools-version:6.0
import Foundation
import PackageDescription

/// Imports are internal unless marked `public import`, and a member is visible only where its module
/// is imported: the compiler holds the layers (C below FFmpeg, FFmpeg below Lecture). The package
/// graph holds the rest: Course, Server and CommandSupport depend on LectureModel, never on Lecture
/// or FFmpeg, so they cannot reach FFmpeg at all.
let layers: [SwiftSetting] = [.enableUpcomingFeature("InternalImportsByDefault"), .enableUpcomingFeature("MemberImportVisibility")]

let package = Package(
    name: "CoursePack",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "coursepack", targets: ["coursepack"]),
        .executable(name: "coursepack-server", targets: ["coursepack-server"]),
        .library(name: "Lecture", targets: ["Lecture", "LectureModel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
    ],
    targets: [
        // FFmpeg's C headers and libraries, found with pkg-config. libavfilter's headers come from the
        // same folder; the library itself is loaded when a source needs a filter (CFFmpegShims'
        // cp_avfilter), so it is not linked.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libavutil libswscale libswresample",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libavutil-dev",
                              "libswscale-dev", "libswresample-dev"])]
        ),
        // C that must be compiled: the av_log and interrupt callback trampolines (which honour
        // CLinux's signal flag).
        .target(name: "CFFmpegShims", dependencies: ["CFFmpeg", "CLinux"]),
        // zimg (libzimg-dev): the Lanczos resize of the rung scalers, for a half to a fifth of libswscale's CPU.
        .systemLibrary(
            name: "CZimg",
            pkgConfig: "zimg",
            providers: [.apt(["libzimg-dev"])]
        ),
        // Tesseract's C API (libtesseract-dev), for reading slide text.
        .systemLibrary(
            name: "CTesseract",
            pkgConfig: "tesseract",
            providers: [.apt(["libtesseract-dev"])]
        ),
        // Linux calls Swift's Glibc module does not export or cannot call (renameat2's exchange,
        // prctl), and the process-wide signal flag.
        .target(name: "CLinux"),
        // A Swift reader over Tesseract: grey pictures in, lines of words with boxes and confidences out.
        .target(name: "OCR", dependencies: ["CTesseract"], swiftSettings: layers),
        // Safe Swift wrappers over FFmpeg; no policy, no C types in the public API (the C modules are
        // imported `internal`, so the compiler refuses any that leaks).
        .target(name: "FFmpeg", dependencies: ["CFFmpeg", "CFFmpegShims", "CZimg"], swiftSettings: layers),
        // The package model, free of FFmpeg: presets, plans, playlists, fragments, manifests, captions,
        // the slide-change detector, the worker protocol, errors, signals, how files are written and
        // published. What Course and Server know of a lecture.
        .target(name: "LectureModel", dependencies: [
            "CLinux",
            .product(name: "Crypto", package: "swift-crypto"),
        ], swiftSettings: layers),
        // The FFmpeg pipeline: probe, one-pass decode and encode, posters, chapters, downloads,
        // validation; the only user of FFmpeg.
        .target(name: "Lecture", dependencies: [
            "LectureModel",
            "FFmpeg",
            "OCR",
            "CLinux",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: layers),
        // Courses: course.json, the worker pool of child processes, manifest.json and index.html.
        .target(name: "Course", dependencies: [
            "LectureModel",
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "SystemPackage", package: "swift-system"),
        ], swiftSettings: layers),
        // The job server: HTTP API (Hummingbird), the durable queue (SQLite through GRDB on one machine,
        // PostgreSQL through PostgresNIO for many), the job runner of `serve` and `worker`, metrics, webhooks.
        .target(name: "Server", dependencies: [
            "Course", "LectureModel", "CLinux",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "Mustache", package: "swift-mustache"),
        ], swiftSettings: layers),
        // What both programs print and how they exit: output lines, exit codes, presets by name, logging.
        .target(name: "CommandSupport", dependencies: [
            "LectureModel",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: layers),
        // The command line: transcode, chapters, batch, probe, validate. Without the server's
        // dependency tree, so `make run` builds only what a single lecture needs; `serve` and
        // `worker` run coursepack-server.
        .executableTarget(name: "coursepack", dependencies: [
            "Lecture",
            "LectureModel",
            "Course",
            "CommandSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: layers),
        // The job server's program: serve and worker.
        .executableTarget(name: "coursepack-server", dependencies: [
            "LectureModel",
            "Server",
            "CommandSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "UnixSignals", package: "swift-service-lifecycle"),
        ], swiftSettings: layers),
        .testTarget(name: "CoursePackTests", dependencies: [
            "Lecture", "LectureModel", "Course", "Server", "FFmpeg", "OCR",
            // The job-store contract writes rows under the stores to see their schemas refuse them.
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
        ], swiftSettings: layers),
    ]
)

// `make fuzz` only: libFuzzer targets over the parsers (Sources/coursepack-fuzz), built with
// -sanitize=fuzzer in a scratch folder of their own.
if ProcessInfo.processInfo.environment["COURSEPACK_FUZZ"] != nil {
    package.targets.append(.executableTarget(name: "coursepack-fuzz", dependencies: ["Lecture", "LectureModel", "Course"],
                                             swiftSettings: layers))
}
