public import Foundation

/// Automatic captions and transcripts from a lecture's speech (docs/SPEECH.md). The one decode pass
/// hands the sound, as 16-kHz mono PCM, to a speech recognizer running beside it (`SpeechBranch`);
/// after the pass its timed segments become a caption track (`SpeechCues`), `transcript.txt` and
/// `transcript.json`. The recognizer itself (a child process) is made by the layer above.
public protocol SpeechRecognizer: AnyObject, Sendable {
    /// 16-bit little-endian mono PCM at `SpeechAudio.sampleRate`, in order. Throws when the
    /// recognizer has failed.
    func write(_ pcm: Data) throws
    /// Ends the input and waits for the recognizer's result.
    func finish() throws -> SpeechResult
    /// Stops the recognizer (the pass failed); its result is not wanted.
    func cancel()
}

public enum SpeechAudio {
    public static let sampleRate: Int32 = 16000
}

/// What the speech stage is asked for: `--asr-model`, `--language`, the preset's `asrModel` and
/// `language`.
public struct SpeechOptions: Sendable, Equatable, Codable {
    /// A CTranslate2 Whisper model folder.
    public var model: String
    /// ISO 639-1 code of the lecture's language; nil: the recognizer detects it.
    public var language: String?

    public init(model: String, language: String?) {
        self.model = model
        self.language = language
    }

    /// Why `code` is not a language code the speech stage takes (ISO 639-1, two lowercase letters), or nil.
    public static func languageProblem(_ code: String) -> String? {
        code.count == 2 && code.allSatisfy({ $0.isASCII && $0.isLowercase }) ? nil
            : "must be an ISO 639-1 language code of two lowercase letters such as en or zh, is \"\(code.prefix(20))\""
    }

    /// The files a model folder must hold; checked before any decoding.
    public static func modelProblem(_ folder: String) -> String? {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder), isFolder.boolValue else {
            return "no such model folder"
        }
        for name in ["model.bin", "config.json"] where !FileManager.default.fileExists(atPath: (folder as NSString).appendingPathComponent(name)) {
            return "not a CTranslate2 Whisper model folder (no \(name))"
        }
        return nil
    }
}

/// One stretch of speech as the recognizer timed it; words carry their own times when it gave them.
public struct SpeechSegment: Sendable, Codable, Equatable {
    public struct Word: Sendable, Codable, Equatable {
        public var start: Double
        public var end: Double
        /// As the recognizer wrote it, with its leading space in languages that have spaces.
        public var text: String
        public init(start: Double, end: Double, text: String) { self.start = start; self.end = end; self.text = text }
    }

    public var start: Double
    public var end: Double
    public var text: String
    public var words: [Word]

    public init(start: Double, end: Double, text: String, words: [Word]) {
        self.start = start
        self.end = end
        self.text = text
        self.words = words
    }
}

/// What the recognizer heard.
public struct SpeechResult: Sendable, Equatable {
    /// The language transcribed: the one asked for, or the one detected.
    public var language: String?
    /// Whether `language` was detected rather than given, and how sure the detection was.
    public var detected: Bool
    public var probability: Double?
    public var segments: [SpeechSegment]
    /// Seconds of sound the recognizer received.
    public var audioSeconds: Double

    public init(language: String?, detected: Bool, probability: Double?, segments: [SpeechSegment], audioSeconds: Double) {
        self.language = language
        self.detected = detected
        self.probability = probability
        self.segments = segments
        self.audioSeconds = audioSeconds
    }
}

/// Cuts recognized speech into caption cues by the usual caption norms: at most `maxSeconds` on
/// screen, at most `lines` lines of `lineLength` characters, a new cue after a pause or at the end
/// of a sentence once the cue is long enough to read.
public enum SpeechCues {
    public static let maxSeconds = 7.0
    public static let lineLength = 42
    public static let lines = 2
    /// A pause this long between words starts a new cue.
    static let pause = 1.0
    /// A sentence end closes a cue that has been on screen this long.
    static let sentenceSeconds = 2.5

    public static func cues(_ segments: [SpeechSegment]) -> [Cue] {
        var words: [SpeechSegment.Word] = []
        for s in segments {
            words += s.words.isEmpty ? spread(s) : s.words
        }
        var cues: [Cue] = []
        var current: [SpeechSegment.Word] = []
        func close() {
            guard let first = current.first, let last = current.last else { return }
            let text = wrap(current.map(\.text).joined().trimmingCharacters(in: .whitespaces))
            if !text.isEmpty { cues.append(Cue(start: first.start, end: max(last.end, first.start + 0.2), text: text)) }
            current = []
        }
        for w in words where !w.text.trimmingCharacters(in: .whitespaces).isEmpty {
            if let first = current.first, let last = current.last {
                let joined = (current.map(\.text).joined() + w.text).trimmingCharacters(in: .whitespaces)
                let tooLong = w.end - first.start > maxSeconds || !fits(joined)
                let paused = w.start - last.end >= pause
                let sentence = endsSentence(last.text) && last.end - first.start >= sentenceSeconds
                if tooLong || paused || sentence { close() }
            }
            current.append(w)
        }
        close()
        // A cue ends before the next begins.
        for i in cues.indices.dropLast() where cues[i].end > cues[i + 1].start {
            cues[i].end = max(cues[i].start + 0.1, cues[i + 1].start)
        }
        return cues
    }

    /// A segment without word times as words (characters, for text without spaces) with times
    /// spread over the segment by length.
    static func spread(_ s: SpeechSegment) -> [SpeechSegment.Word] {
        let text = s.text.trimmingCharacters(in: .whitespaces)
        let pieces: [String] = text.contains(" ")
            ? text.split(separator: " ").enumerated().map { $0.offset == 0 ? String($0.element) : " " + $0.element }
            : text.map(String.init)
        let total = Double(max(1, pieces.reduce(0) { $0 + $1.count }))
        var t = s.start
        return pieces.map { piece in
            let d = (s.end - s.start) * Double(piece.count) / total
            defer { t += d }
            return .init(start: t, end: t + d, text: piece)
        }
    }

    static func endsSentence(_ word: String) -> Bool {
        guard let c = word.trimmingCharacters(in: .whitespaces).last else { return false }
        return ".?!。？！".contains(c)
    }

    /// Whether `text` wraps into the allowed lines.
    static func fits(_ text: String) -> Bool {
        wrapLines(text).allSatisfy { $0.count <= lineLength } && wrapLines(text).count <= lines
    }

    static func wrap(_ text: String) -> String { wrapLines(text).joined(separator: "\n") }

    /// One line when it fits, else two balanced lines broken at a space (or anywhere, for text
    /// without spaces such as Chinese); longer text keeps breaking at the line length.
    static func wrapLines(_ text: String) -> [String] {
        let chars = Array(text)
        guard chars.count > lineLength else { return [text] }
        let spaces = chars.indices.filter { chars[$0] == " " }
        if chars.count <= 2 * lineLength {
            let middle = chars.count / 2
            if let cut = spaces.filter({ $0 <= lineLength && chars.count - $0 - 1 <= lineLength })
                .min(by: { abs($0 - middle) < abs($1 - middle) }) {
                return [String(chars[..<cut]), String(chars[(cut + 1)...])]
            }
            if spaces.isEmpty {
                let cut = (chars.count + 1) / 2
                return [String(chars[..<cut]), String(chars[cut...])]
            }
        }
        // Greedy, for text too long for two lines (a caller splits before that happens).
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ", omittingEmptySubsequences: true) {
            if line.isEmpty { line = String(word) } else if line.count + 1 + word.count <= lineLength { line += " " + word } else {
                lines.append(line)
                line = String(word)
            }
            while line.count > lineLength {
                lines.append(String(line.prefix(lineLength)))
                line = String(line.dropFirst(lineLength))
            }
        }
        if !line.isEmpty { lines.append(line) }
        return lines
    }
}

/// The transcript files of a lecture: `transcript.txt` (paragraphs at long pauses) and
/// `transcript.json` (the timed segments).
public struct TranscriptSummary: Sendable, Codable, Equatable {
    public var language: String?
    /// Whether the language was detected (not given), and the detection's probability.
    public var languageDetected: Bool
    public var languageProbability: Double?
    public var text: String
    public var json: String
    public var segments: Int
    public var words: Int
    /// The model folder's name.
    public var model: String
}

package enum TranscriptWriter {
    /// A pause this long starts a new paragraph in transcript.txt.
    package static let paragraphPause = 3.0

    package static func write(_ result: SpeechResult, model: String, package: URL) throws -> TranscriptSummary {
        var paragraphs: [String] = []
        var paragraph = ""
        var lastEnd: Double?
        let spaced = result.language != "zh" && result.language != "ja"
        for s in result.segments {
            let text = s.text.trimmingCharacters(in: .whitespaces)
            if let e = lastEnd, s.start - e >= paragraphPause, !paragraph.isEmpty {
                paragraphs.append(paragraph)
                paragraph = ""
            }
            paragraph += paragraph.isEmpty || !spaced ? text : " " + text
            lastEnd = s.end
        }
        if !paragraph.isEmpty { paragraphs.append(paragraph) }
        try OutputFile.write(paragraphs.joined(separator: "\n\n") + "\n", to: package.appendingPathComponent("transcript.txt"))

        struct File: Codable {
            var language: String?
            var languageDetected: Bool
            var model: String
            var segments: [SpeechSegment]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let rounded = result.segments.map { s -> SpeechSegment in
            var s = s
            s.start = (s.start * 1000).rounded() / 1000
            s.end = (s.end * 1000).rounded() / 1000
            return s
        }
        try OutputFile.write(try encoder.encode(File(language: result.language, languageDetected: result.detected, model: model, segments: rounded)),
                             to: package.appendingPathComponent("transcript.json"))
        return TranscriptSummary(language: result.language, languageDetected: result.detected, languageProbability: result.probability,
                                 text: "transcript.txt", json: "transcript.json", segments: result.segments.count,
                                 words: result.segments.reduce(0) { $0 + max($1.words.count, 1) }, model: model)
    }
}
