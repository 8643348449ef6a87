import Foundation
public import LectureModel

/// One lecture of a course, resolved from `course.json` or found in the course folder.
public struct CourseLecture: Sendable, Equatable {
    /// Folder name of its package under the output folder: `[a-z0-9][a-z0-9_-]*`.
    public var id: String
    public var title: String
    /// Absolute path of the source.
    public var source: String
    /// The source's path relative to the course folder, as the manifest shows it.
    public var relativeSource: String
    /// Caption files named in course.json; sidecars beside the source are found by the transcoder.
    public var captions: [CaptionInput]
    /// A preset name or file for this lecture only.
    public var preset: String?
    /// The language spoken (ISO 639-1), from the lecture's or the course's `language`; nil: detected
    /// by the speech stage.
    public var language: String? = nil
}

/// A course: `course.json` if the folder has one, otherwise every media file in it in natural order.
/// The course.json format is documented in docs/COURSES.md.
public struct CourseSpec: Sendable {
    public var id: String
    public var title: String
    public var description: String?
    /// The course's preset, when course.json names one; `--preset` wins over it.
    public var preset: String?
    public var lectures: [CourseLecture]
    /// Media files in the folder that course.json does not list (and that are therefore not packaged).
    public var unlisted: [String]

    public static let specFileName = "course.json"
    static let mediaExtensions: Set<String> = [
        "mp4", "m4v", "mov", "mkv", "webm", "avi", "ts", "mts", "m2ts", "mpg", "mpeg", "flv", "wmv", "3gp", "ogv", "mxf",
        "m4a", "mp3", "wav", "flac", "ogg", "opus", "aac",
    ]
    static let idPattern = "^[a-z0-9][a-z0-9_-]{0,63}$"

    /// Reads a course folder. `excluding` is a folder inside it that is not searched (the output folder).
    public static func load(courseDirectory: String, excluding: String? = nil) throws -> CourseSpec {
        let dir = URL(fileURLWithPath: courseDirectory).standardizedFileURL
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir.path, isDirectory: &isDir), isDir.boolValue else {
            throw CoursePackError(.usage, path: dir.path, "not a folder")
        }
        let found = mediaFiles(in: dir, excluding: excluding.map { URL(fileURLWithPath: $0).standardizedFileURL.path })
        let specURL = dir.appendingPathComponent(specFileName)
        if FileManager.default.fileExists(atPath: specURL.path) {
            return try parse(specURL, directory: dir, found: found)
        }
        guard !found.isEmpty else {
            throw CoursePackError(.badInput, path: dir.path, "no media files and no \(specFileName)")
        }
        return CourseSpec(id: slug(dir.lastPathComponent), title: title(fromFileName: dir.lastPathComponent + ".dir"),
                          description: nil, preset: nil, lectures: lectures(files: found, in: dir), unlisted: [])
    }

    // MARK: course.json

    private static func parse(_ url: URL, directory dir: URL, found: [String]) throws -> CourseSpec {
        func fail(_ field: String, _ reason: String) -> CoursePackError {
            CoursePackError(.usage, path: url.path, field.isEmpty ? reason : "\(field): \(reason)")
        }
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: try Data(contentsOf: url))
        } catch {
            throw fail("", "not valid JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"))")
        }
        guard let top = object as? [String: Any] else { throw fail("", "must be a JSON object") }
        try checkKeys(top, allowed: ["id", "title", "description", "preset", "language", "lectures"], at: "", fail)
        func language(_ object: [String: Any], at: String) throws -> String? {
            guard let l = try string(object, "language", at: at, fail) else { return nil }
            if let problem = SpeechOptions.languageProblem(l) { throw fail(at.isEmpty ? "language" : "\(at).language", problem) }
            return l
        }
        let courseLanguage = try language(top, at: "")
        let id = try string(top, "id", at: "", fail) ?? slug(dir.lastPathComponent)
        guard id.range(of: idPattern, options: .regularExpression) != nil else {
            throw fail("id", "\"\(id)\" must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit")
        }
        let courseTitle = try string(top, "title", at: "", fail) ?? title(fromFileName: dir.lastPathComponent + ".dir")
        let description = try string(top, "description", at: "", fail)
        // A preset given as a file is relative to the course folder; a name is looked up in Presets/.
        func presetRef(_ p: String) -> String {
            p.contains("/") || p.hasSuffix(".json") ? dir.appendingPathComponent(p).standardizedFileURL.path : p
        }
        let preset = try string(top, "preset", at: "", fail).map(presetRef)

        var lectures: [CourseLecture] = []
        if let raw = top["lectures"] {
            guard let list = raw as? [Any], !list.isEmpty else { throw fail("lectures", "must be a non-empty array") }
            var ids = Set<String>()
            for (i, item) in list.enumerated() {
                let at = "lectures[\(i)]"
                guard let entry = item as? [String: Any] else { throw fail(at, "must be an object with a \"file\"") }
                try checkKeys(entry, allowed: ["file", "id", "title", "captions", "preset", "language"], at: at, fail)
                guard let file = try string(entry, "file", at: at, fail) else { throw fail("\(at).file", "is required") }
                let source = try resolve(file, in: dir, field: "\(at).file", fail)
                guard isRegularFile(source) else { throw fail("\(at).file", "no such file: \(file)") }
                let lectureID: String
                if let given = try string(entry, "id", at: at, fail) {
                    guard given.range(of: idPattern, options: .regularExpression) != nil else {
                        throw fail("\(at).id", "\"\(given)\" must be 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit")
                    }
                    guard ids.insert(given).inserted else { throw fail("\(at).id", "\"\(given)\" is used by an earlier lecture") }
                    lectureID = given
                } else {
                    lectureID = uniqueID(slug(URL(fileURLWithPath: file).deletingPathExtension().lastPathComponent), &ids)
                }
                var captions: [CaptionInput] = []
                if let rawCaptions = entry["captions"] {
                    guard let items = rawCaptions as? [Any] else { throw fail("\(at).captions", "must be an array") }
                    for (j, c) in items.enumerated() {
                        let cat = "\(at).captions[\(j)]"
                        guard let cap = c as? [String: Any] else { throw fail(cat, "must be an object with a \"file\"") }
                        try checkKeys(cap, allowed: ["file", "language"], at: cat, fail)
                        guard let capFile = try string(cap, "file", at: cat, fail) else { throw fail("\(cat).file", "is required") }
                        let path = try resolve(capFile, in: dir, field: "\(cat).file", fail)
                        guard isRegularFile(path) else { throw fail("\(cat).file", "no such file: \(capFile)") }
                        let language = try string(cap, "language", at: cat, fail)
                        if let language, CaptionInput(argument: "x:\(language)").language != language {
                            throw fail("\(cat).language", "\"\(language)\" is not a language tag such as en or pt-BR")
                        }
                        captions.append(CaptionInput(path: path, language: language))
                    }
                }
                lectures.append(CourseLecture(
                    id: lectureID, title: try string(entry, "title", at: at, fail) ?? title(fromFileName: file),
                    source: source, relativeSource: relative(source, to: dir), captions: captions,
                    preset: try string(entry, "preset", at: at, fail).map(presetRef),
                    language: try language(entry, at: at) ?? courseLanguage))
            }
            // Ids given later must not collide with ids made earlier from file names.
            let all = lectures.map(\.id)
            if let dup = all.first(where: { id in all.filter { $0 == id }.count > 1 }) {
                throw fail("lectures", "two lectures would share the id \"\(dup)\"; give them distinct \"id\"s")
            }
        } else {
            guard !found.isEmpty else { throw fail("lectures", "no lectures listed and no media files in the folder") }
            lectures = Self.lectures(files: found, in: dir).map { var l = $0; l.language = courseLanguage; return l }
        }
        let listed = Set(lectures.map(\.relativeSource))
        return CourseSpec(id: id, title: courseTitle, description: description, preset: preset, lectures: lectures,
                          unlisted: found.filter { !listed.contains($0) })
    }

    private static func checkKeys(_ object: [String: Any], allowed: Set<String>, at: String,
                                  _ fail: (String, String) -> CoursePackError) throws {
        if let unknown = object.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw fail(at.isEmpty ? unknown : "\(at).\(unknown)", "unknown field (known: \(allowed.sorted().joined(separator: ", ")))")
        }
    }

    private static func string(_ object: [String: Any], _ key: String, at: String,
                               _ fail: (String, String) -> CoursePackError) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let s = value as? String, !s.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw fail(at.isEmpty ? key : "\(at).\(key)", "must be a non-empty string")
        }
        return s
    }

    /// A path inside the course folder: relative, no `..` that leaves it.
    private static func resolve(_ path: String, in dir: URL, field: String, _ fail: (String, String) -> CoursePackError) throws -> String {
        guard !path.hasPrefix("/") else { throw fail(field, "must be a path relative to the course folder") }
        let resolved = dir.appendingPathComponent(path).standardizedFileURL.path
        guard resolved.hasPrefix(dir.path + "/") else { throw fail(field, "\(path) is outside the course folder") }
        return resolved
    }

    // MARK: finding and naming lectures

    /// Lectures for media files, in the order given, titled and named after their files.
    private static func lectures(files: [String], in dir: URL) -> [CourseLecture] {
        var ids = Set<String>()
        return files.map { rel in
            CourseLecture(id: uniqueID(slug(URL(fileURLWithPath: rel).deletingPathExtension().lastPathComponent), &ids),
                          title: title(fromFileName: rel), source: dir.appendingPathComponent(rel).path,
                          relativeSource: rel, captions: [], preset: nil)
        }
    }

    /// Media files under `dir` (hidden entries skipped), as relative paths in natural order.
    static func mediaFiles(in dir: URL, excluding: String?) -> [String] {
        var out: [String] = []
        func walk(_ url: URL, _ prefix: String) {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: url.path) else { return }
            for name in names where !name.hasPrefix(".") {
                let child = url.appendingPathComponent(name)
                if child.path == excluding { continue }
                var isDir: ObjCBool = false
                guard FileManager.default.fileExists(atPath: child.path, isDirectory: &isDir) else { continue }
                if isDir.boolValue {
                    walk(child, prefix + name + "/")
                } else if mediaExtensions.contains((name as NSString).pathExtension.lowercased()) {
                    out.append(prefix + name)
                }
            }
        }
        walk(dir, "")
        return out.sorted { NaturalOrder.less($0, $1) }
    }

    /// "03_Sets-and-Maps.mp4" → "Sets and Maps"; "week 2/Lecture 10 - Graphs.mkv" → "Lecture 10 - Graphs".
    public static func title(fromFileName path: String) -> String {
        var name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        // A name without spaces uses '_' or '-' between words; otherwise a '-' belongs to the title.
        if !name.contains(" ") { name = name.replacingOccurrences(of: "-", with: " ") }
        name = name.replacingOccurrences(of: "_", with: " ")
        // A leading sequence number ("01 ", "1. ", "02 - ") orders files; it is not part of the title.
        if let r = name.range(of: #"^\d+\s*[-.)]?\s+"#, options: .regularExpression), r.upperBound < name.endIndex {
            name = String(name[r.upperBound...])
        }
        name = name.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        if name == name.lowercased(), let first = name.first { name = first.uppercased() + name.dropFirst() }
        return name.isEmpty ? "Untitled" : name
    }

    /// A folder-safe id: lowercase ASCII letters, digits and '-'.
    public static func slug(_ name: String) -> String {
        var out = ""
        for ch in name.lowercased().unicodeScalars {
            if ch.isASCII, CharacterSet.alphanumerics.contains(ch) {
                out.unicodeScalars.append(ch)
            } else if !out.isEmpty, !out.hasSuffix("-") {
                out += "-"
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "lecture" : String(out.prefix(64))
    }

    private static func uniqueID(_ base: String, _ used: inout Set<String>) -> String {
        var id = base, n = 2
        while !used.insert(id).inserted {
            id = "\(base.prefix(60))-\(n)"
            n += 1
        }
        return id
    }

    private static func isRegularFile(_ path: String) -> Bool {
        var isDir: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
    }

    static func relative(_ path: String, to dir: URL) -> String {
        path.hasPrefix(dir.path + "/") ? String(path.dropFirst(dir.path.count + 1)) : path
    }
}

/// Natural order for file names: digit runs compare as numbers, so "lecture 2" sorts before "lecture 10".
public enum NaturalOrder {
    public static func less(_ a: String, _ b: String) -> Bool {
        let x = chunks(a), y = chunks(b)
        for (p, q) in zip(x, y) {
            switch (p, q) {
            case let (.number(m), .number(n)):
                if m != n { return m < n }
            case let (.text(s), .text(t)):
                let (ls, lt) = (s.lowercased(), t.lowercased())
                if ls != lt { return ls < lt }
            case (.number, .text): return true
            case (.text, .number): return false
            }
        }
        // Equal but for case or leading zeros: fall back to plain order, so the order is total.
        return x.count != y.count ? x.count < y.count : a < b
    }

    private enum Chunk: Equatable {
        case number(Decimal)
        case text(String)
    }

    private static func chunks(_ s: String) -> [Chunk] {
        var out: [Chunk] = []
        var current = ""
        var digits = false
        func flush() {
            guard !current.isEmpty else { return }
            out.append(digits ? .number(Decimal(string: current) ?? 0) : .text(current))
            current = ""
        }
        for ch in s {
            let d = ch.isASCII && ch.isNumber
            if d != digits { flush(); digits = d }
            current.append(ch)
        }
        flush()
        return out
    }
}
