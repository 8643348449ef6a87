import Foundation
import Testing
@testable import Course

/// `coursepack batch` end to end: real worker processes, real encodes, faults injected through the
/// documented COURSEPACK_TEST_FAULT switch, the manifest checked against its JSON Schema.
@Suite(.serialized, .blockingThreads) struct BatchTests {
    /// A 6 s 320x180 lecture with a tone; `seconds` makes longer ones.
    static func clip(seconds: Int = 6, size: String = "320x180") throws -> String {
        try Support.fixture("clip-\(seconds)s-\(size).mp4", [
            "-f", "lavfi", "-i", "testsrc2=s=\(size):r=25:d=\(seconds)", "-f", "lavfi", "-i", "sine=f=440:d=\(seconds)",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
        ])
    }

    /// A course folder holding copies of `clip` under `names`, and random bytes under `bad`.
    static func course(_ names: [String], bad: [String] = [], clip: String? = nil) throws -> URL {
        let dir = try Support.scratch("course").appendingPathComponent("Algorithms 101")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let source = try clip ?? BatchTests.clip()
        for n in names { try FileManager.default.copyItem(atPath: source, toPath: dir.appendingPathComponent(n).path) }
        for n in bad {
            try Data((0..<60_000).map { _ in UInt8.random(in: 0...255) }).write(to: dir.appendingPathComponent(n))
        }
        return dir
    }

    static func batch(_ course: URL, _ out: URL, _ extra: [String] = [], fault: String? = nil) throws -> (Support.Result, [[String: Any]]) {
        let r = try Support.run(Support.binary, ["batch", course.path, "-o", out.path, "--json", "--preset", try Support.testPreset()] + extra,
                                environment: fault.map { ["COURSEPACK_TEST_FAULT": $0] })
        let events = r.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (r, events)
    }

    static func manifest(_ out: URL) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("manifest.json"))) as! [String: Any]
    }

    static func lectures(_ out: URL) throws -> [[String: Any]] { try manifest(out)["lectures"] as! [[String: Any]] }

    static func validateManifest(_ out: URL) throws {
        let r = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/tools/validate_course.py").path,
                                            out.appendingPathComponent("manifest.json").path, Support.repoRoot.path])
        #expect(r.status == 0, "manifest.json does not match docs/course.schema.json: \(r.stderr)")
    }

    /// Hidden temporary folders a run left in the course package.
    static func leftovers(_ out: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []).filter { $0.contains(".partial-") || $0.contains(".replaced-") || $0.contains(".staging-") || $0.contains(".old-") || $0.contains(".tmp-") }
    }

    @Test func courseWithBadCrashingHangingAndGreedyLecturesFinishesTheOthers() throws {
        let course = try Self.course(["Lecture 10 - Trees.mp4", "Lecture 2 - Sorting.mp4", "Lecture 1 - Intro.mp4",
                                      "Lecture 3 - crashes.mp4", "Lecture 4 - hangs.mp4", "Lecture 5 - greedy.mp4"],
                                     bad: ["Lecture 6 - corrupt.mp4"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        // The stall timeout counts from the child's start: under a loaded test run a greedy child did
        // not reach its first allocations within 3 s and was stopped as hung, so it is 8 s here.
        let (r, events) = try Self.batch(course, out, ["--workers", "2", "--stall-timeout", "8", "--memory-limit", "300"],
                                         fault: "crash:crashes,hang:hangs,memory:greedy")
        #expect(r.status == 1, "a batch with failed lectures exits 1: \(r.stderr)")

        let lectures = try Self.lectures(out)
        // Natural order of file names: 1, 2, 3, 4, 5, 6, 10.
        #expect(lectures.map { $0["id"] as! String } == ["lecture-1-intro", "lecture-2-sorting", "lecture-3-crashes", "lecture-4-hangs",
                                                        "lecture-5-greedy", "lecture-6-corrupt", "lecture-10-trees"])
        #expect(lectures.first?["title"] as? String == "Lecture 1 - Intro")
        let status = Dictionary(uniqueKeysWithValues: lectures.map { ($0["id"] as! String, $0["status"] as! String) })
        let category = Dictionary(uniqueKeysWithValues: lectures.compactMap { l in
            (l["error"] as? [String: Any]).map { (l["id"] as! String, $0["category"] as! String) }
        })
        #expect(status.filter { $0.value == "ready" }.keys.sorted() == ["lecture-1-intro", "lecture-10-trees", "lecture-2-sorting"])
        #expect(category == ["lecture-3-crashes": "crashed", "lecture-4-hangs": "hung", "lecture-5-greedy": "memory",
                             "lecture-6-corrupt": "badInput"])
        let reasons = lectures.compactMap { ($0["error"] as? [String: Any])?["reason"] as? String }
        #expect(reasons.contains { $0.contains("Lecture 6 - corrupt.mp4") && $0.contains("not a supported media file") })
        #expect(reasons.contains { $0.contains("SIGSEGV") })
        #expect(reasons.contains { $0.contains("over the limit of 300 MB") })

        // One failure event per failed lecture, one finish event per ready one.
        #expect(events.filter { $0["event"] as? String == "lecture-failed" }.count == 4)
        #expect(events.filter { $0["event"] as? String == "lecture-finished" }.count == 3)
        #expect(events.last?["event"] as? String == "batch-finished")
        #expect(events.contains { $0["event"] as? String == "progress" && ($0["percent"] as? Double ?? 0) > 0 })

        try Self.validateManifest(out)
        #expect(try Self.manifest(out)["complete"] as? Bool == true)
        #expect(Self.leftovers(out).isEmpty, "temporary folders left: \(Self.leftovers(out))")
        for l in lectures where l["status"] as? String == "ready" {
            let v = try Support.coursepack("validate", out.appendingPathComponent(l["id"] as! String).path, "--no-decode")
            #expect(v.status == 0, "\(l["id"]!): \(v.stdout)")
            let lecture = l["lecture"] as! [String: Any]
            // Paths in the course manifest are relative to it.
            let master = lecture["master"] as! String
            #expect(master == "\(l["id"]!)/master.m3u8")
            #expect(FileManager.default.fileExists(atPath: out.appendingPathComponent(master).path))
        }
        // Failed lectures leave no package folder behind.
        for id in category.keys { #expect(!FileManager.default.fileExists(atPath: out.appendingPathComponent(id).path)) }

        // The report lists every lecture and plays one in a real browser.
        let page = try Support.run("python3", [Support.repoRoot.appendingPathComponent("Tests/browser/course_report.py").path, out.path])
        #expect(page.status == 0, "report check failed: \(page.stdout) \(page.stderr)")
        let report = try JSONSerialization.jsonObject(with: Data(page.stdout.utf8)) as? [String: Any] ?? [:]
        #expect((report["lectures"] as? [[String: Any]])?.map { $0["id"] as! String } == lectures.map { $0["id"] as! String })
        #expect((report["failures"] as? [Any])?.count == 4)
    }

    @Test func perLectureTimeoutStopsAWorkerThatStillReportsNothing() throws {
        let course = try Self.course(["slow hangs.mp4", "fine.mp4"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        // 5 s: long enough for the fine lecture (six encodes of a 6-s clip) on a loaded 2-core machine.
        let (r, events) = try Self.batch(course, out, ["--timeout", "5", "--stall-timeout", "120"], fault: "hang:hangs")
        #expect(r.status == 1)
        let failed = events.filter { $0["event"] as? String == "lecture-failed" }
        #expect(failed.map { $0["category"] as? String } == ["timeout"])
        #expect((failed.first?["reason"] as? String)?.contains("per-lecture timeout of 5 s") == true)
        #expect(try Self.lectures(out).map { $0["status"] as! String } == ["ready", "failed"])
        #expect(Self.leftovers(out).isEmpty)
    }

    @Test func unchangedRerunSkipsEverythingAndAChangedPresetReencodes() throws {
        let course = try Self.course(["b.mp4", "a.mp4"])
        let out = try Support.scratch().appendingPathComponent("pkg")
        let (first, _) = try Self.batch(course, out)
        #expect(first.status == 0, "\(first.stderr)")
        let lectureJSON = out.appendingPathComponent("a/lecture.json")
        let madeAt = try FileManager.default.attributesOfItem(atPath: lectureJSON.path)[.modificationDate] as! Date
        func presetHash() throws -> String? {
            let l = try JSONSerialization.jsonObject(with: Data(contentsOf: lectureJSON)) as! [String: Any]
            return (l["build"] as? [String: Any])?["presetSHA256"] as? String
        }
        let firstPreset = try presetHash()

        let (second, events) = try Self.batch(course, out)
        #expect(second.status == 0)
        #expect(events.filter { $0["event"] as? String == "lecture-skipped" }.count == 2)
        #expect(!events.contains { $0["event"] as? String == "lecture-started" })
        #expect(try FileManager.default.attributesOfItem(atPath: lectureJSON.path)[.modificationDate] as! Date == madeAt)
        try Self.validateManifest(out)

        // Another preset: every lecture is made again, and lecture.json records the new preset.
        let other = try Support.scratch().appendingPathComponent("other.json")
        try String(contentsOfFile: try Support.testPreset(), encoding: .utf8).replacingOccurrences(of: "\"crf\": 28", with: "\"crf\": 30")
            .write(to: other, atomically: true, encoding: .utf8)
        let (third, events3) = try Self.batch(course, out, ["--preset", other.path])
        #expect(third.status == 0)
        #expect(events3.filter { $0["event"] as? String == "lecture-finished" }.count == 2)
        #expect(try presetHash() != nil && presetHash() != firstPreset)
        let inManifest = try Self.lectures(out).first { $0["id"] as? String == "a" }!["lecture"] as! [String: Any]
        #expect((inManifest["build"] as? [String: Any])?["presetSHA256"] as? String == (try presetHash()))

        // A changed source is made again too; the other lecture is skipped.
        try FileManager.default.removeItem(at: course.appendingPathComponent("a.mp4"))
        try FileManager.default.copyItem(atPath: try Self.clip(seconds: 4), toPath: course.appendingPathComponent("a.mp4").path)
        let (fourth, events4) = try Self.batch(course, out, ["--preset", other.path])
        #expect(fourth.status == 0)
        #expect(events4.filter { $0["event"] as? String == "lecture-finished" }.map { $0["id"] as! String } == ["a"])
        #expect(events4.filter { $0["event"] as? String == "lecture-skipped" }.map { $0["id"] as! String } == ["b"])
        let a = try Self.lectures(out).first { $0["id"] as? String == "a" }!["lecture"] as! [String: Any]
        #expect(abs((a["duration"] as! Double) - 4) < 0.2)
    }

    @Test func killedBatchLeavesAConsistentPackageAndARerunCompletesIt() throws {
        let long = try Self.clip(seconds: 20, size: "640x360")
        let course = try Self.course((1...6).map { "part \($0).mp4" }, clip: long)
        let out = try Support.scratch().appendingPathComponent("pkg")
        let p = try Child(Support.binary, ["batch", course.path, "-o", out.path, "--json", "--preset", try Support.testPreset()])
        // Wait for the first lecture to be ready and a second one to be under way, then kill -9.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline {
            if let m = try? Self.manifest(out), let t = m["totals"] as? [String: Any], t["ready"] as? Int ?? 0 >= 1 { break }
            usleep(100_000)
        }
        usleep(400_000)
        p.send(SIGKILL)
        p.wait()

        // No worker outlives the batch.
        var orphans: [String] = []
        for _ in 0..<20 {
            orphans = Self.processes(mentioning: out.path)
            if orphans.isEmpty { break }
            usleep(100_000)
        }
        #expect(orphans.isEmpty, "workers left running: \(orphans)")

        // What is visible is consistent: a valid, incomplete manifest, and complete packages only.
        try Self.validateManifest(out)
        let partial = try Self.manifest(out)
        #expect(partial["complete"] as? Bool == false, "the batch finished before it was killed; the test needs longer lectures")
        let visible = try FileManager.default.contentsOfDirectory(atPath: out.path).filter { !$0.hasPrefix(".") && !$0.contains(".") }
        for id in visible {
            let v = try Support.coursepack("validate", out.appendingPathComponent(id).path, "--no-decode")
            #expect(v.status == 0, "\(id) is visible but not complete: \(v.stdout)")
        }

        let (rerun, events) = try Self.batch(course, out)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        let skipped = events.filter { $0["event"] as? String == "lecture-skipped" }.count
        #expect(skipped >= 1 && skipped == visible.count)
        #expect(try Self.lectures(out).allSatisfy { $0["status"] as? String == "ready" })
        #expect(Self.leftovers(out).isEmpty, "temporary folders left: \(Self.leftovers(out))")
        try Self.validateManifest(out)
    }

    @Test func courseJSONSetsOrderTitlesCaptionsAndPresets() throws {
        let course = try Self.course(["intro.mp4", "graphs.mp4", "extra.mp4"])
        try "1\n00:00:00,500 --> 00:00:02,000\nWelcome.\n".write(to: course.appendingPathComponent("welcome.srt"), atomically: true, encoding: .utf8)
        let spec = """
        { "id": "algo-101", "title": "Algorithms", "description": "Sorting & <graphs>",
          "lectures": [
            { "file": "graphs.mp4", "title": "Graphs", "preset": "minimal" },
            { "file": "intro.mp4", "id": "welcome", "title": "Welcome", "captions": [ { "file": "welcome.srt", "language": "en" } ] } ] }
        """
        try spec.write(to: course.appendingPathComponent("course.json"), atomically: true, encoding: .utf8)
        let out = try Support.scratch().appendingPathComponent("pkg")
        let (r, events) = try Self.batch(course, out)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(events.contains { ($0["message"] as? String)?.contains("extra.mp4: not listed") == true })
        let m = try Self.manifest(out)
        #expect((m["course"] as? [String: Any])?["id"] as? String == "algo-101")
        let lectures = try Self.lectures(out)
        #expect(lectures.map { $0["id"] as! String } == ["graphs", "welcome"])
        #expect(lectures.map { $0["title"] as! String } == ["Graphs", "Welcome"])
        let captions = (lectures[1]["lecture"] as! [String: Any])["captions"] as! [[String: Any]]
        #expect(captions.map { $0["language"] as? String } == ["en"])
        try Self.validateManifest(out)
        let html = try String(contentsOf: out.appendingPathComponent("index.html"), encoding: .utf8)
        #expect(html.contains("Sorting &amp; &lt;graphs&gt;"))
        // Each lecture's chapters are listed by their titles.
        let escape = { (s: String) in s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;").replacingOccurrences(of: "'", with: "&#39;") }
        let chapterTitles = lectures.flatMap { ($0["lecture"] as? [String: Any])?["chapters"] as? [[String: Any]] ?? [] }.compactMap { $0["title"] as? String }
        #expect(!chapterTitles.isEmpty && chapterTitles.allSatisfy { html.contains("</a> \(escape($0))</li>") }, "\(chapterTitles)")
        // A lecture's own preset wins over --preset.
        #expect(lectures.map { $0["preset"] as! String } == ["minimal", "test"])

        // The course's preset, a file named relative to the course folder, applies without --preset.
        try FileManager.default.copyItem(atPath: try Support.testPreset(), toPath: course.appendingPathComponent("ladder.json").path)
        try spec.replacingOccurrences(of: #""id": "algo-101","#, with: #""id": "algo-101", "preset": "ladder.json","#)
            .write(to: course.appendingPathComponent("course.json"), atomically: true, encoding: .utf8)
        let out2 = try Support.scratch().appendingPathComponent("pkg")
        let r2 = try Support.coursepack("batch", course.path, "-o", out2.path)
        #expect(r2.status == 0, "\(r2.stderr)")
        #expect(try Self.lectures(out2).map { $0["preset"] as! String } == ["minimal", "test"])
        #expect((try Self.manifest(out2)["preset"] as? [String: Any])?["name"] as? String == "test")
    }

    @Test(arguments: [
        (#"{ "lectures": [ { "file": "missing.mp4" } ] }"#, "lectures[0].file: no such file"),
        (#"{ "lectures": [ { "file": "a.mp4", "titel": "x" } ] }"#, "lectures[0].titel: unknown field"),
        (#"{ "lectures": [ { "file": "a.mp4", "id": "A B" } ] }"#, "lectures[0].id:"),
        (#"{ "lectures": [ { "file": "a.mp4", "id": "x" }, { "file": "a.mp4", "id": "x" } ] }"#, "lectures[1].id: \"x\" is used"),
        (#"{ "lectures": [ { "file": "../a.mp4" } ] }"#, "outside the course folder"),
        (#"{ "lectures": [ { "file": "a.mp4", "captions": [ { "file": "a.srt" } ] } ] }"#, "lectures[0].captions[0].file: no such file"),
        (#"{ "title": 5 }"#, "title: must be a non-empty string"),
        (#"{ "lectures": [ "#, "not valid JSON"),
    ])
    func invalidCourseJSONNamesTheField(spec: String, expected: String) throws {
        let course = try Self.course(["a.mp4"])
        try spec.write(to: course.appendingPathComponent("course.json"), atomically: true, encoding: .utf8)
        let out = try Support.scratch().appendingPathComponent("pkg")
        let r = try Support.coursepack("batch", course.path, "-o", out.path)
        #expect(r.status == 64)
        #expect(r.stderr.contains("course.json") && r.stderr.contains(expected), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect(!FileManager.default.fileExists(atPath: out.path))
    }

    /// Command lines of live processes that mention `text`.
    static func processes(mentioning text: String) -> [String] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return pids.filter { Int($0) != nil }.compactMap { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return nil }
            let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
            guard cmd.contains(text), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                  !stat.contains(") Z ") else { return nil }
            return "\(pid): \(cmd)"
        }
    }
}

@Suite(.blockingThreads) struct CourseNamingTests {
    @Test func naturalOrderComparesNumbersAsNumbers() {
        let names = ["Lecture 10.mp4", "lecture 2.mp4", "Lecture 1.mp4", "week 2/b.mp4", "week 10/a.mp4", "Lecture 02.mp4", "intro.mp4"]
        #expect(names.sorted(by: NaturalOrder.less) ==
                ["intro.mp4", "Lecture 1.mp4", "Lecture 02.mp4", "lecture 2.mp4", "Lecture 10.mp4", "week 2/b.mp4", "week 10/a.mp4"])
        #expect(NaturalOrder.less("a2", "a10") && !NaturalOrder.less("a10", "a2"))
        #expect(!NaturalOrder.less("same", "same"))
    }

    @Test func titlesAndIdsComeFromFileNames() {
        #expect(CourseSpec.title(fromFileName: "03_Sets-and-Maps.mp4") == "Sets and Maps")
        #expect(CourseSpec.title(fromFileName: "week 2/Lecture 10 - Graphs.mkv") == "Lecture 10 - Graphs")
        #expect(CourseSpec.title(fromFileName: "01 - introduction.mp4") == "Introduction")
        #expect(CourseSpec.title(fromFileName: "2024.mp4") == "2024")
        #expect(CourseSpec.title(fromFileName: "Q-learning in practice.mp4") == "Q-learning in practice")
        #expect(CourseSpec.slug("Lecture 10 - Graphs (part 2)") == "lecture-10-graphs-part-2")
        #expect(CourseSpec.slug("Überblick") == "berblick")
        #expect(CourseSpec.slug("???") == "lecture")
    }

    @Test func interruptedBatchLeavesLecturesPendingAndExits75() throws {
        let long = try BatchTests.clip(seconds: 20, size: "640x360")
        let course = try BatchTests.course(["one.mp4", "two.mp4"], clip: long)
        let out = try Support.scratch().appendingPathComponent("pkg")
        let p = try Child(Support.binary, ["batch", course.path, "-o", out.path, "--preset", try Support.testPreset()])
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline, !FileManager.default.fileExists(atPath: out.appendingPathComponent("manifest.json").path) { usleep(50_000) }
        usleep(300_000)
        p.send(SIGTERM)
        p.wait()
        #expect(p.status == 75)
        let lectures = try BatchTests.lectures(out)
        #expect(lectures.contains { $0["status"] as? String == "pending" })
        #expect(!lectures.contains { $0["status"] as? String == "failed" })
        #expect(BatchTests.leftovers(out).isEmpty, "\(BatchTests.leftovers(out))")
        try BatchTests.validateManifest(out)
    }
}

@Suite(.blockingThreads) struct ProcessIdentityTests {
    @Test func aSignalReachesOnlyTheProcessThePidNamedAtStart() throws {
        let sleeper = try Child("/bin/sleep", ["30"])
        defer { sleeper.send(SIGKILL); sleeper.wait() }
        let identity = ProcessIdentity(pid: sleeper.pid)
        #expect(identity.startTime != nil)
        // The same pid with another start time stands for a recycled pid: no signal is sent.
        let stale = ProcessIdentity(pid: sleeper.pid, startTime: identity.startTime! + 1)
        #expect(!stale.send(SIGKILL))
        #expect(sleeper.isRunning)
        #expect(identity.send(SIGKILL))
        sleeper.wait()
        #expect(sleeper.signal == SIGKILL)
        // Once reaped, nothing is sent.
        #expect(!identity.send(SIGKILL))
    }
}
