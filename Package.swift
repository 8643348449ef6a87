// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CoursePack",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coursepack", targets: ["coursepack"]),
        .library(name: "Lecture", targets: ["Lecture"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // FFmpeg's C headers and libraries, found with pkg-config.
        .systemLibrary(
            name: "CFFmpeg",
            pkgConfig: "libavformat libavcodec libavfilter libavutil libswscale libswresample",
            providers: [.apt(["libavformat-dev", "libavcodec-dev", "libavfilter-dev", "libavutil-dev",
                              "libswscale-dev", "libswresample-dev"])]
        ),
        // C that must be compiled: the av_log and interrupt callback trampolines.
        .target(name: "CFFmpegShims", dependencies: ["CFFmpeg"]),
        // Safe Swift wrappers over FFmpeg; no policy, no C types in the public API.
        .target(name: "FFmpeg", dependencies: ["CFFmpeg", "CFFmpegShims"]),
        // Packaging: probe, plan, one-pass pipeline, playlists, validation.
        .target(name: "Lecture", dependencies: ["FFmpeg", .product(name: "Logging", package: "swift-log")]),
        // Courses: course.json, the worker pool of child processes, manifest.json and index.html.
        .target(name: "Course", dependencies: ["Lecture", "FFmpeg"]),
        // The job server: HTTP API (Hummingbird), durable queue (SQLite through GRDB), metrics, webhooks.
        .target(name: "Server", dependencies: [
            "Course", "Lecture", "FFmpeg",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "coursepack", dependencies: [
            "Lecture",
            "Course",
            "Server",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "CoursePackTests", dependencies: ["Lecture", "Course", "Server", "FFmpeg"]),
    ]
)
