package import Foundation

/// A caption file given for a lecture: `--captions FILE[:LANG]`, or a sidecar beside the input.
public struct CaptionInput: Sendable, Equatable {
    public var path: String
    /// BCP 47 language tag, e.g. "en"; nil when unknown.
    public var language: String?

    public init(path: String, language: String?) {
        self.path = path
        self.language = language
    }

    /// Parses `FILE[:LANG]`; a LANG is letters, digits and '-' only, so paths with colons still work.
    public init(argument: String) {
        if let colon = argument.lastIndex(of: ":"),
           case let lang = argument[argument.index(after: colon)...], !lang.isEmpty, lang.count <= 35,
           lang.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }), lang.first!.isLetter {
            self.init(path: String(argument[..<colon]), language: String(lang))
        } else {
            self.init(path: argument, language: nil)
        }
    }

    /// `lecture.srt`, `lecture.vtt`, `lecture.en.srt` and `lecture.en.vtt` beside `input`.
    public static func sidecars(of input: String) -> [CaptionInput] {
        let url = URL(fileURLWithPath: input)
        let base = url.deletingPathExtension().lastPathComponent
        let dir = url.deletingLastPathComponent()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { name -> CaptionInput? in
            let ext = (name as NSString).pathExtension.lowercased()
            guard ext == "srt" || ext == "vtt", name.hasPrefix(base + ".") else { return nil }
            let middle = String(name.dropFirst(base.count + 1).dropLast(ext.count + 1))
            if middle.isEmpty { return CaptionInput(path: dir.appendingPathComponent(name).path, language: nil) }
            guard middle.count <= 35, middle.allSatisfy({ $0.isLetter || $0 == "-" }) else { return nil }
            return CaptionInput(path: dir.appendingPathComponent(name).path, language: middle)
        }
    }
}

/// One caption cue, times in seconds.
public struct Cue: Sendable, Equatable {
    public var start: Double
    public var end: Double
    public var text: String
}

/// Reads SRT and WebVTT caption files; errors name the file and the line.
public enum CaptionParser {
    public static func parse(_ input: CaptionInput) throws -> [Cue] {
        let path = input.path
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CoursePackError(.badInput, path: path, "caption file cannot be read")
        }
        guard var text = String(data: data, encoding: .utf8) else {
            throw CoursePackError(.badInput, path: path, "caption file is not UTF-8 text")
        }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let lines = text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let isVTT = lines.first?.hasPrefix("WEBVTT") == true
        if path.lowercased().hasSuffix(".vtt") && !isVTT {
            throw CoursePackError(.badInput, path: path, "line 1: a WebVTT file must start with WEBVTT")
        }
        var cues: [Cue] = []
        var i = isVTT ? 1 : 0
        // WebVTT's header block (the lines after WEBVTT up to the first blank one, such as HLS's
        // X-TIMESTAMP-MAP) holds no cues.
        if isVTT { while i < lines.count && !lines[i].trimmingCharacters(in: .whitespaces).isEmpty && !lines[i].contains("-->") { i += 1 } }
        while i < lines.count {
            let line = lines[i].trimmingCharacters(in: .whitespaces)
            if line.isEmpty { i += 1; continue }
            if isVTT && (line.hasPrefix("NOTE") || line.hasPrefix("STYLE") || line.hasPrefix("REGION")) {
                while i < lines.count && !lines[i].trimmingCharacters(in: .whitespaces).isEmpty { i += 1 }
                continue
            }
            // An optional identifier line (SRT's counter, or a WebVTT cue id) before the timing line.
            var timingLine = i
            if !line.contains("-->") {
                timingLine = i + 1
                guard timingLine < lines.count, lines[timingLine].contains("-->") else {
                    throw CoursePackError(.badInput, path: path, "line \(i + 1): expected a cue timing line (start --> end), found \"\(line.prefix(60))\"")
                }
            }
            let parts = lines[timingLine].components(separatedBy: "-->")
            let startText = parts[0].trimmingCharacters(in: .whitespaces)
            let endText = parts.count > 1 ? (parts[1].trimmingCharacters(in: .whitespaces).split(separator: " ").first.map(String.init) ?? "") : ""
            guard let start = timestamp(startText) else {
                throw CoursePackError(.badInput, path: path, "line \(timingLine + 1): bad timestamp \"\(startText)\"")
            }
            guard let end = timestamp(endText) else {
                throw CoursePackError(.badInput, path: path, "line \(timingLine + 1): bad timestamp \"\(endText)\"")
            }
            guard end > start else {
                throw CoursePackError(.badInput, path: path, "line \(timingLine + 1): cue ends before it starts")
            }
            var body: [String] = []
            i = timingLine + 1
            while i < lines.count && !lines[i].trimmingCharacters(in: .whitespaces).isEmpty {
                body.append(lines[i])
                i += 1
            }
            cues.append(Cue(start: start, end: end, text: body.joined(separator: "\n")))
        }
        if cues.isEmpty { throw CoursePackError(.badInput, path: path, "caption file has no cues") }
        return cues.sorted { $0.start < $1.start }
    }

    /// "HH:MM:SS,mmm", "HH:MM:SS.mmm" or "MM:SS.mmm".
    static func timestamp(_ s: String) -> Double? {
        let parts = s.replacingOccurrences(of: ",", with: ".").split(separator: ":")
        guard parts.count == 2 || parts.count == 3 else { return nil }
        let nums = parts.map { Double($0) }
        guard nums.allSatisfy({ $0 != nil && $0! >= 0 }), parts.last!.contains("."),
              parts.dropLast().allSatisfy({ $0.allSatisfy(\.isNumber) }) else { return nil }
        let n = nums.map { $0! }
        guard n.last! < 60, n.count == 2 || n[1] < 60 else { return nil }
        return n.count == 3 ? n[0] * 3600 + n[1] * 60 + n[2] : n[0] * 60 + n[1]
    }
}

/// Caption tracks written as segmented WebVTT for an HLS SUBTITLES group.
package enum CaptionWriter {
    package struct Track {
        package var input: CaptionInput
        package var cues: [Cue]
        /// Made from the speech, not given as a file.
        package var automatic = false
        package var name: String { input.language ?? "und" }

        /// The rendition's NAME: the language's English name ("English (automatic)" for one made
        /// from the speech), else the tag.
        var displayName: String {
            let language = input.language.map { tag in
                Locale(identifier: "en").localizedString(forLanguageCode: String(tag.split(separator: "-")[0])) ?? tag
            }
            if automatic { return "\(language ?? "Captions") (automatic)" }
            return input.language ?? "Captions"
        }

        package init(input: CaptionInput, cues: [Cue], automatic: Bool = false) {
            self.input = input
            self.cues = cues
            self.automatic = automatic
        }
    }

    /// Writes `subs/NAME/index.m3u8` and its segments, cut at the given segment durations.
    package static func write(_ track: Track, package: URL, segmentDurations: [Double]) throws -> String {
        let dir = package.appendingPathComponent("subs").appendingPathComponent(track.name)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var playlist = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:\(Int(segmentDurations.max()?.rounded() ?? 6))",
                        "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD"]
        var start = 0.0
        for (k, d) in segmentDurations.enumerated() {
            let end = start + d
            let name = String(format: "seg_%05d.vtt", k)
            var body = "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n"
            for c in track.cues where c.start < end && c.end > start {
                body += "\n\(vttTimestamp(c.start)) --> \(vttTimestamp(c.end))\n\(c.text)\n"
            }
            try OutputFile.write(body, to: dir.appendingPathComponent(name))
            playlist += [String(format: "#EXTINF:%.6f,", d), name]
            start = end
        }
        playlist.append("#EXT-X-ENDLIST")
        try OutputFile.write(playlist.joined(separator: "\n") + "\n", to: dir.appendingPathComponent("index.m3u8"))
        return "subs/\(track.name)/index.m3u8"
    }
}
