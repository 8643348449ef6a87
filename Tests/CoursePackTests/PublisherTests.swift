import Foundation
@testable import LectureModel
import Testing

/// One publisher: the hidden names, the rule for leftovers, and `coursepack transcode` killed at
/// each step of replacing a package (the job server's placing is killed in FaultTests).
@Suite(.blockingThreads) struct PublisherTests {
    /// A process id that was just in use and is gone.
    static func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test func hiddenNamesReadBack() {
        let made = HiddenFolder.new(.staging, for: "week-1.intro")
        #expect(HiddenFolder(name: made.name) == made)
        #expect(made.host == Publishing.host && made.pid == getpid())
        let dashed = HiddenFolder(lecture: "l1", kind: .replaced, host: "worker-7.example", pid: 42, nonce: 9)
        #expect(HiddenFolder(name: ".l1.replaced-worker-7.example-42-9") == dashed)
        // Names written before the host was part of them.
        #expect(HiddenFolder(name: ".l1.partial-42-9") == HiddenFolder(lecture: "l1", kind: .partial, host: Publishing.host, pid: 42, nonce: 9))
        #expect(HiddenFolder(name: ".l1.old-42") == HiddenFolder(lecture: "l1", kind: .replaced, host: Publishing.host, pid: 42, nonce: 0))
        for other in [".coursepack-batch", ".l1.tmp-42", "l1", ".l1.partial-", ".l1.partial-x-y", ".partial-42-1", ".l1.staging-h--1-2"] {
            #expect(HiddenFolder(name: other) == nil, "\(other)")
        }
    }

    @Test func theRuleRestoresOrRemovesWhatDeadPublishersLeft() throws {
        let dir = try Support.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let dead = try Self.deadPID()
        let fm = FileManager.default
        func folder(_ name: String, holding file: String = "lecture.json", age: TimeInterval = 0) throws {
            let url = dir.appendingPathComponent(name)
            try fm.createDirectory(at: url, withIntermediateDirectories: true)
            try Data(name.utf8).write(to: url.appendingPathComponent(file))
            if age > 0 { try fm.setAttributes([.modificationDate: Date().addingTimeInterval(-age)], ofItemAtPath: url.path) }
        }
        let me = Publishing.host
        // a: killed between the renames: no package, the old one aside.
        try folder(".a.replaced-\(me)-\(dead)-1")
        try folder(".a.staging-\(me)-\(dead)-2")
        // b: a package in place and the old one left aside; a live run's partial folder.
        try folder("b")
        try folder(".b.replaced-\(me)-\(dead)-3")
        try folder(".b.partial-\(me)-\(getpid())-4")
        // c: another host's folders: a fresh one is left, an old one is abandoned.
        try folder(".c.staging-elsewhere-\(dead)-5")
        try folder(".c.partial-elsewhere-\(dead)-6", age: Publishing.foreignAge + 60)
        try folder(".d.old-\(dead)")
        Publishing.removeLeftovers(in: dir)
        let left = Set(try fm.contentsOfDirectory(atPath: dir.path))
        #expect(left == ["a", "b", ".b.partial-\(me)-\(getpid())-4", ".c.staging-elsewhere-\(dead)-5", "d"], "\(left.sorted())")
        #expect(try String(contentsOf: dir.appendingPathComponent("a/lecture.json"), encoding: .utf8) == ".a.replaced-\(me)-\(dead)-1",
                "the set-aside package is the one put back")
        #expect(try String(contentsOf: dir.appendingPathComponent("b/lecture.json"), encoding: .utf8) == "b")
    }

    /// `coursepack transcode` over a published package, killed between its two renames (a file
    /// system that cannot exchange): no package is in place, the old one is aside; the next run on
    /// that destination puts it back before anything else, even one that then fails.
    @Test func transcodeKilledBetweenTheRenamesLosesNoPackage() throws {
        let (dir, src, preset, out) = try Self.published()
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = try Data(contentsOf: out.appendingPathComponent("lecture.json"))
        let files = try FileManager.default.subpathsOfDirectory(atPath: out.path).sorted()

        let killed = try Self.killed(at: "between-renames", src, out, preset, noExchange: true)
        #expect(killed.contains("test pause at between-renames"), "\(killed)")
        #expect(!FileManager.default.fileExists(atPath: out.path), "killed between the renames, nothing is in place")
        let aside = Support.leftovers(beside: out)
        #expect(aside.contains { $0.hasPrefix(".lecture.replaced-") } && aside.contains { $0.hasPrefix(".lecture.partial-") }, "\(aside)")

        let next = try Support.coursepack("transcode", dir.appendingPathComponent("missing.mp4").path, "-o", out.path, "--preset", preset)
        #expect(next.status != 0)
        #expect(try Data(contentsOf: out.appendingPathComponent("lecture.json")) == before, "the old package is back in place")
        #expect(Support.leftovers(beside: out).isEmpty, "\(Support.leftovers(beside: out))")
        #expect(try FileManager.default.subpathsOfDirectory(atPath: out.path).sorted() == files, "the whole package, every file")
    }

    /// Killed just before the exchange: the old package stays in place whole; the next run removes
    /// the dead run's folder and replaces the package in one exchange.
    @Test func transcodeKilledBeforeTheExchangeKeepsTheOldPackage() throws {
        let (dir, src, preset, out) = try Self.published()
        defer { try? FileManager.default.removeItem(at: dir) }
        let before = try Data(contentsOf: out.appendingPathComponent("lecture.json"))
        let killed = try Self.killed(at: "before-exchange", src, out, preset, noExchange: false)
        #expect(killed.contains("test pause at before-exchange"), "\(killed)")
        #expect(try Data(contentsOf: out.appendingPathComponent("lecture.json")) == before)
        #expect(Support.leftovers(beside: out).count == 1, "\(Support.leftovers(beside: out))")
        let again = try Support.coursepack("transcode", src, "-o", out.path, "--preset", preset)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(Support.leftovers(beside: out).isEmpty, "\(Support.leftovers(beside: out))")
        #expect(try Data(contentsOf: out.appendingPathComponent("lecture.json")) != before, "the new run's package is in place")
    }

    /// A scratch folder with a package published in it (`lecture`), its source and preset.
    static func published(_ name: String = #function) throws -> (dir: URL, source: String, preset: String, package: URL) {
        let dir = try Support.scratch(name)
        let src = try Support.fixture("publish.mp4", ["-f", "lavfi", "-i", "testsrc2=s=320x180:r=25:d=4", "-f", "lavfi", "-i",
                                                      "sine=frequency=440:duration=4", "-c:v", "libx264", "-c:a", "aac", "-shortest"])
        let preset = try Support.testPreset()
        let out = dir.appendingPathComponent("lecture")
        let first = try Support.coursepack("transcode", src, "-o", out.path, "--preset", preset, "--renditions-only")
        try #require(first.status == 0, "\(first.stderr)")
        return (dir, src, preset, out)
    }

    /// Runs `coursepack transcode` until it pauses at `point`, kills it with SIGKILL, and returns its stderr.
    static func killed(at point: String, _ src: String, _ out: URL, _ preset: String, noExchange: Bool) throws -> String {
        let log = out.deletingLastPathComponent().appendingPathComponent("\(point).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Support.binary)
        p.arguments = ["transcode", src, "-o", out.path, "--preset", preset]
        var env = ProcessInfo.processInfo.environment
        env["COURSEPACK_TEST_PAUSE"] = "\(point):60"
        if noExchange { env["COURSEPACK_TEST_NO_EXCHANGE"] = "1" }
        p.environment = env
        p.standardError = try FileHandle(forWritingTo: log)
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline, p.isRunning,
              !((try? String(contentsOf: log, encoding: .utf8)) ?? "").contains("test pause at \(point)") {
            usleep(50_000)
        }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return (try? String(contentsOf: log, encoding: .utf8)) ?? ""
    }
}
