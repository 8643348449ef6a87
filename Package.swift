// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "CoursePack",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "coursepack", targets: ["coursepack"]),
        .library(name: "Lecture", targets: ["Lecture"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
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
        .executableTarget(name: "coursepack", dependencies: [
            "Lecture",
            "Course",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "CoursePackTests", dependencies: ["Lecture", "Course", "FFmpeg"]),
    ]
)
