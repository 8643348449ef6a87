public import Foundation
public import LectureModel

/// `manifest.json` at the root of a course package: what players and LMSs read.
/// Its JSON Schema is docs/course.schema.json; paths are relative to the manifest's folder.
public struct CourseManifest: Sendable, Codable {
    public struct Course: Sendable, Codable {
        public var id: String
        public var title: String
        public var description: String?
    }

    public struct Generator: Sendable, Codable {
        public var name: String
        public var version: String
    }

    public struct PresetInfo: Sendable, Codable {
        public var name: String
        public var sha256: String
    }

    public struct Failure: Sendable, Codable {
        public var category: FailureCategory
        public var reason: String
    }

    public struct Entry: Sendable, Codable {
        public enum Status: String, Sendable, Codable { case ready, failed, pending }
        public var id: String
        public var title: String
        /// The source's path relative to the course folder.
        public var source: String
        public var status: Status
        /// The lecture's package folder, relative to the manifest ("intro/"); set when ready.
        public var path: String?
        /// The preset the lecture was (or is to be) made with.
        public var preset: String
        /// The package's lecture.json with paths relative to the manifest; set when ready.
        public var lecture: LectureManifest?
        public var error: Failure?
    }

    public struct Totals: Sendable, Codable {
        public var lectures: Int
        public var ready: Int
        public var failed: Int
        public var pending: Int
        /// Seconds of media in the ready lectures.
        public var duration: Double
        /// Bytes on disk of the ready lectures' packages.
        public var bytes: Int
    }

    public var format = "coursepack-course/1"
    public var course: Course
    public var generator: Generator
    /// The batch's preset; a lecture may name its own in course.json.
    public var preset: PresetInfo
    public var updated: String
    /// True once every lecture is ready or failed.
    public var complete: Bool
    public var totals: Totals
    public var lectures: [Entry]

    init(course: Course, preset: PresetInfo, lectures: [Entry], bytes: Int) {
        self.course = course
        generator = Generator(name: Product.name, version: Product.version)
        self.preset = preset
        let formatter = ISO8601DateFormatter()
        updated = formatter.string(from: Date())
        self.lectures = lectures
        let ready = lectures.filter { $0.status == .ready }
        totals = Totals(lectures: lectures.count, ready: ready.count, failed: lectures.filter { $0.status == .failed }.count,
                        pending: lectures.filter { $0.status == .pending }.count,
                        duration: (ready.compactMap { $0.lecture?.duration }.reduce(0, +) * 1000).rounded() / 1000,
                        bytes: bytes)
        complete = totals.pending == 0
    }

    public static func read(_ url: URL) throws -> CourseManifest {
        try JSONDecoder().decode(CourseManifest.self, from: Data(contentsOf: url))
    }

    func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }
}

/// Writes a file so readers see the old or the new content, never a part: temporary file, fsync, rename.
enum AtomicFile {
    static func write(_ data: Data, to url: URL) throws {
        let tmp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
            throw CoursePackError(.output, path: url.path, "cannot write: \(String(cString: strerror(errno)))")
        }
        do {
            let handle = try FileHandle(forWritingTo: tmp)
            try handle.write(contentsOf: data)
            try handle.synchronize()
            try handle.close()
            if rename(tmp.path, url.path) != 0 {
                throw CoursePackError(.output, path: url.path, "cannot replace: \(String(cString: strerror(errno)))")
            }
        } catch {
            try? FileManager.default.removeItem(at: tmp)
            if let e = error as? CoursePackError { throw e }
            throw CoursePackError(.output, path: url.path, "cannot write: \(error.localizedDescription)")
        }
    }
}
