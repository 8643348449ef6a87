import Foundation
import LectureModel

/// `search.json` beside the course manifest: per lecture, its chapter titles, the slide text of each
/// chapter and the transcript's segments, each with its times, so an LMS (or the course page) can
/// search a course and jump to the second.
///
///     {"format": "coursepack-search/1", "course": "ID",
///      "lectures": [{"id", "title", "master", "language",
///                    "entries": [{"kind": "chapter" | "slide" | "speech", "start", "end", "text"}]}]}
public enum CourseSearch {
    public struct Entry: Codable, Sendable, Equatable {
        public var kind: String
        public var start: Double
        public var end: Double
        public var text: String
    }

    public struct LectureIndex: Codable, Sendable, Equatable {
        public var id: String
        public var title: String
        public var master: String
        public var language: String?
        public var entries: [Entry]
    }

    struct File: Codable {
        var format = "coursepack-search/1"
        var course: String
        var lectures: [LectureIndex]
    }

    /// The most transcript segments read from one lecture (a 4-hour lecture has about 3,000).
    static let maxSegments = 20000

    /// One ready lecture's entries: chapters (title, and slide text when it says more), then speech.
    /// `package` is the lecture's folder; `lecture` its manifest with paths relative to the course.
    static func index(id: String, title: String, package: URL, lecture: LectureManifest) -> LectureIndex {
        var entries: [Entry] = []
        for c in lecture.chapters {
            entries.append(Entry(kind: "chapter", start: c.start, end: c.end, text: c.title))
            let text = c.text.trimmingCharacters(in: .whitespacesAndNewlines)
            if !text.isEmpty && text != c.title { entries.append(Entry(kind: "slide", start: c.start, end: c.end, text: text)) }
        }
        if let t = lecture.transcript {
            struct Transcript: Decodable {
                struct Segment: Decodable { var start: Double; var end: Double; var text: String }
                var segments: [Segment]
            }
            let file = package.appendingPathComponent(URL(fileURLWithPath: t.json).lastPathComponent)
            if let data = try? Data(contentsOf: file), let transcript = try? JSONDecoder().decode(Transcript.self, from: data) {
                for s in transcript.segments.prefix(maxSegments) {
                    entries.append(Entry(kind: "speech", start: s.start, end: s.end, text: s.text.trimmingCharacters(in: .whitespaces)))
                }
            }
        }
        return LectureIndex(id: id, title: title, master: lecture.master, language: lecture.transcript?.language, entries: entries)
    }

    static func encoded(course: String, lectures: [LectureIndex]) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(File(course: course, lectures: lectures))
    }
}
