import Foundation
import Testing
import FFmpeg
@testable import Lecture
@testable import LectureModel

@Suite(.blockingThreads) struct PlaylistParsingTests {
    @Test func attributeListKeepsQuotedCommas() throws {
        let a = try AttributeList(parsing: #"BANDWIDTH=1000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=640x360"#)
        #expect(a["BANDWIDTH"] == "1000")
        #expect(a["CODECS"] == "avc1.64001f,mp4a.40.2")
        #expect(a["RESOLUTION"] == "640x360")
        #expect(throws: HLSParseError.self) { try AttributeList(parsing: #"CODECS="unterminated"#) }
    }

    @Test func mediaPlaylistByteRanges() throws {
        let p = try MediaPlaylist(text: """
        #EXTM3U
        #EXT-X-TARGETDURATION:6
        #EXT-X-PLAYLIST-TYPE:VOD
        #EXT-X-I-FRAMES-ONLY
        #EXTINF:6.0,
        #EXT-X-BYTERANGE:100@50
        a.m4s
        #EXTINF:2.5,
        #EXT-X-BYTERANGE:30
        a.m4s
        #EXT-X-ENDLIST
        """)
        #expect(p.iFramesOnly && p.hasEndList && p.targetDuration == 6)
        #expect(p.segments.count == 2)
        #expect(p.segments[1].byteRange?.offset == 150 && p.segments[1].byteRange?.length == 30)
        #expect(p.totalDuration == 8.5)
        #expect(throws: HLSParseError.self) { try MediaPlaylist(text: "#EXTM3U\nseg.m4s\n") }
    }

    @Test func hugeBoxSizesAreRefusedNotTrapped() {
        // A moov whose 64-bit largesize is 2^63 + 1, then the same box as the first of a segment.
        var box: [UInt8] = [0, 0, 0, 1] + Array("moov".utf8) + [0x80, 0, 0, 0, 0, 0, 0, 1] + [UInt8](repeating: 0, count: 16)
        #expect(throws: MP4Fragments.ParseError.self) { try MP4Fragments.sampleEntry(initSegment: Data(box)) }
        box.replaceSubrange(4..<8, with: Array("moof".utf8))
        #expect(throws: MP4Fragments.ParseError.self) { try MP4Fragments.fragments(of: Data(box)) }
    }

    @Test func muxedSegmentsGetAFenceBetweenPicturesAndSound() throws {
        func box(_ type: String, _ body: [UInt8]) -> [UInt8] {
            let n = UInt32(body.count + 8)
            return [UInt8(n >> 24), UInt8(n >> 16 & 0xFF), UInt8(n >> 8 & 0xFF), UInt8(n & 0xFF)] + Array(type.utf8) + body
        }
        func u32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        // Two trafs (pictures: samples of 3 and 4 bytes; sound: one of 5), data offsets from the moof.
        func segment(audioOffsetShift: Int = 0, tracks: Int = 2) -> [UInt8] {
            func traf(_ id: Int, _ sizes: [Int], _ offset: Int) -> [UInt8] {
                box("traf", box("tfhd", u32(0x020000) + u32(id)) + box("trun", u32(0x000201) + u32(sizes.count) + u32(offset) + sizes.flatMap(u32)))
            }
            // moof = 8 + mfhd 16 + traf1 (8 + tfhd 16 + trun 8+12+8 = 52) + traf2 (8 + 16 + 8+12+4 = 48)
            let moofSize = 8 + 16 + 52 + (tracks > 1 ? 48 : 0)
            var moof = box("mfhd", u32(0) + u32(1)) + traf(1, [3, 4], moofSize + 8)
            if tracks > 1 { moof += traf(2, [5], moofSize + 8 + 7 + audioOffsetShift) }
            return box("moof", moof) + box("mdat", [0, 0, 0, 3, 0x65, 0, 0] + (tracks > 1 ? [0x21, 0x1B, 0x40, 0x05, 0x06] : []))
        }
        let before = segment()
        let after = try #require(try MP4Fragments.fencingTrackData(Data(before)))
        let b = [UInt8](after)
        #expect(b.count == before.count + 5)
        let mdat = before.count - 20  // the mdat box: 8 + 7 + 5 bytes
        #expect(Array(b[(mdat + 8)..<(mdat + 15)]) == [0, 0, 0, 3, 0x65, 0, 0])
        #expect(Array(b[(mdat + 15)..<(mdat + 20)]) == MP4Fragments.trackDataFence)
        #expect(Array(b[(mdat + 20)...]) == [0x21, 0x1B, 0x40, 0x05, 0x06])
        #expect(Array(b[mdat..<(mdat + 4)]) == u32(20 + 5))
        // The sound's trun points at its bytes again; the pictures' is as it was.
        let frags = try MP4Fragments.fragments(of: after)
        #expect(frags.first?.firstSampleOffset == mdat + 8)
        let soundOffsetField = mdat - 4 - 4  // the last trun: ..., data offset, one sample size
        #expect(Array(b[soundOffsetField..<(soundOffsetField + 4)]) == u32(mdat + 8 + 7 + 5))
        // Nothing to fence: one track, or the sound not right after the pictures.
        #expect(try MP4Fragments.fencingTrackData(Data(segment(tracks: 1))) == nil)
        #expect(try MP4Fragments.fencingTrackData(Data(segment(audioOffsetShift: -1))) == nil)
    }

    @Test func peakFollowsRFC8216() {
        // Target 6: windows of 3 to 9 seconds. A 2 s segment alone is too short to count.
        let r = MeasuredRate(sizes: [60_000, 90_000, 10_000], durations: [6, 6, 2], target: 6)
        #expect(r.peak == 90_000 * 8 / 6)
        #expect(abs(r.average - 160_000.0 * 8 / 14) < 1e-6)
    }

    @Test func codecStrings() {
        // Annex B SPS: High profile (100), constraints 0, level 3.1.
        #expect(CodecString.avc(extradata: [0, 0, 0, 1, 0x67, 100, 0, 31, 0xAC]) == "avc1.64001F")
        #expect(CodecString.avc(extradata: [1, 77, 0x40, 30, 0xFF]) == "avc1.4D401E")
        #expect(CodecString.aac(extradata: [0x12, 0x10]) == "mp4a.40.2")
        #expect(CodecString.avc(extradata: []) == nil)
    }
}

@Suite(.blockingThreads) struct PlanTests {
    func source(_ w: Int, _ h: Int, sar: (Int, Int) = (1, 1), rotation: Int = 0, fps: Double = 30) -> SourceInfo {
        var dw = Int((Double(w) * Double(sar.0) / Double(sar.1)).rounded()), dh = h
        if rotation % 180 == 90 { swap(&dw, &dh) }
        let v = SourceInfo.Video(index: 0, codec: "h264", profile: nil, width: w, height: h, pixelFormat: "yuv420p", bitDepth: 8,
                                 sampleAspectRatio: "\(sar.0):\(sar.1)", rotation: rotation, displayWidth: dw, displayHeight: dh,
                                 frameRate: fps, variableFrameRate: false, fieldOrder: "progressive", bitRate: nil)
        let a = SourceInfo.Audio(index: 1, codec: "aac", sampleRate: 48000, channels: 2, layout: "stereo", language: nil, title: nil,
                                 isDefault: true, bitRate: nil)
        return SourceInfo(path: "x", container: "mov", containerName: "", duration: 60, startTime: 0, sizeBytes: nil, bitRate: nil,
                          video: v, audio: [a], selectedAudio: 1, notes: [])
    }

    func preset(_ name: String = "lecture") throws -> Preset {
        try Preset.load(URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets/\(name).json"))
    }

    @Test func ladderFor720pStopsAt720() throws {
        let plan = LadderPlan.make(source: source(1280, 720), preset: try preset())
        #expect(plan.video.map(\.height) == [720, 480, 360, 240, 216])
        #expect(plan.video.allSatisfy { $0.width % 2 == 0 && $0.height % 2 == 0 })
        #expect(plan.audio.contains { $0.audioOnly && $0.kbps <= 64 })
        // The shipped preset's quantiser search per AAC rendition reaches the plan; Opus has none.
        #expect(plan.audio.map(\.aacCoder) == ["fast", "fast", "twoloop", nil])
        // And each rung's own x264 options.
        #expect(plan.video.map(\.x264Params) == ["subme=1:aq-mode=2", "subme=1:aq-mode=2", "aq-mode=2", nil, nil])
    }

    @Test func ladderFor1080pTopsAt720UnlessHD() throws {
        let plan = LadderPlan.make(source: source(1920, 1080), preset: try preset())
        #expect(plan.video.first?.width == 1280 && plan.video.first?.height == 720)
        let hd = LadderPlan.make(source: source(1920, 1080), preset: try preset("lecture-hd"))
        #expect(hd.video.first?.width == 1920 && hd.video.first?.height == 1080)
    }

    @Test func eachRungIsScaledFromTheNextLargerOne() throws {
        let plan = LadderPlan.make(source: source(1920, 1080), preset: try preset("lecture-hd"))
        #expect(plan.video.map(\.scaledFrom) == [nil, "v1080", "v720", "v480", "v360", "v240"])
    }

    @Test func portraitKeepsShortSide() throws {
        let plan = LadderPlan.make(source: source(1920, 1080, rotation: 90), preset: try preset("lecture-hd"))
        #expect(plan.video.first.map { ($0.width, $0.height) } ?? (0, 0) == (1080, 1920))
        #expect(plan.video.allSatisfy { $0.height > $0.width })
    }

    @Test func widePixelsLoseHeightNotGainWidth() throws {
        // DV NTSC widescreen: 720x480 with SAR 32:27 shows as 853x480.
        let plan = LadderPlan.make(source: source(720, 480, sar: (32, 27)), preset: try preset())
        let top = try #require(plan.video.first)
        #expect(top.width <= 720 && top.height <= 480)
        #expect(abs(Double(top.width) / Double(top.height) - 853.0 / 480) < 0.02)
    }

    @Test func threadsFollowEachRungsShareOfThePixels() throws {
        // Six rungs on two cores: one x264 thread each, the branches provide the parallelism.
        let ladder = LadderPlan.make(source: source(1920, 1080), preset: try preset("lecture-hd"), cores: 2)
        #expect(ladder.video.count == 6 && ladder.video.allSatisfy { $0.threads == 1 })
        // A single rung may use every core.
        var one = try preset()
        one.rungs = [one.rungs[1]]
        #expect(LadderPlan.make(source: source(1280, 720), preset: one, cores: 2).video.map(\.threads) == [2])
    }

    @Test func frameRateCapsApplyOnlyBelowSource() throws {
        let plan = LadderPlan.make(source: source(1280, 720, fps: 12), preset: try preset())
        // Only the 216p rung's 10-fps cap is below a 12-fps source.
        #expect(plan.video.allSatisfy { $0.name == "v216" ? $0.frameRateCap == 10 && $0.frameRate == 10 : $0.frameRateCap == nil && $0.frameRate == 12 })
        let plan60 = LadderPlan.make(source: source(1280, 720, fps: 60), preset: try preset())
        #expect(plan60.video.allSatisfy { $0.frameRate <= 30 })
    }
}

@Suite(.blockingThreads) struct PresetTests {
    @Test func shippedPresetsAreValid() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets")
        // Every file in Presets/ loads: decodes, has no field this version does not know, breaks no rule.
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(names == ["lecture-hd.json", "lecture.json", "minimal.json"])
        for name in names {
            #expect(throws: Never.self, "\(name)") { _ = try Preset.load(dir.appendingPathComponent(name)) }
        }
        // A misspelt field is an error, not a silent default.
        let text = try String(contentsOf: dir.appendingPathComponent("lecture.json"), encoding: .utf8)
        let tmp = FileManager.default.temporaryDirectory.appendingPathComponent("preset-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: tmp) }
        for (old, new, field) in [("\"leadSegmentSeconds\"", "\"leadSegmentSecond\"", "leadSegmentSecond"),
                                  ("\"maxFps\"", "\"maxFPS\"", "rungs[0].maxFPS"), ("\"audioOnly\"", "\"audio_only\"", ".audio_only")] {
            #expect(text.contains(old))
            try text.replacingOccurrences(of: old, with: new).write(to: tmp, atomically: true, encoding: .utf8)
            #expect(throws: CoursePackError.self) { _ = try Preset.load(tmp) }
            do { _ = try Preset.load(tmp) } catch { #expect("\(error)".contains("\(field) is not one this version knows"), "\(error)") }
        }
    }

    @Test func problemsNameTheField() throws {
        var p = try Preset.named("minimal", in: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets"))
        p.rungs[1].audio = "nope"
        #expect(p.problem()?.contains("rungs[1].audio") == true)
        p.rungs[1].audio = p.audio[0].name
        p.segmentSeconds = 5
        #expect(p.problem()?.contains("segmentSeconds") == true)
    }

    @Test func audioCodecsAndTheirRanges() throws {
        var p = try Preset.named("minimal", in: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets"))
        let opus = try #require(p.audio.firstIndex { $0.codec == "opus" })
        #expect(p.problem() == nil)
        p.audio[opus].codec = "vorbis"
        #expect(p.problem() == "preset field audio[\(opus)].codec must be aac or opus, is \"vorbis\"")
        p.audio[opus].codec = "opus"
        p.audio[opus].kbps = 8  // fine for Opus, not for AAC
        #expect(p.problem() == nil)
        p.audio[opus].codec = nil
        #expect(p.problem()?.contains("audio[\(opus)].kbps must be between 16 and 320 for aac") == true)
        p.audio[opus].codec = "opus"
        p.audio[opus].sampleRate = 44100
        #expect(p.problem()?.contains("sampleRate must be 48000 for opus") == true)
        p.audio[opus].sampleRate = nil
        p.audio[opus].aacCoder = "fast"
        #expect(p.problem() == "preset field audio[\(opus)].aacCoder is for aac renditions, and this one is opus")
        let aac = try #require(p.audio.firstIndex { ($0.codec ?? "aac") == "aac" })
        p.audio[opus].aacCoder = nil
        p.audio[aac].aacCoder = "anmr"
        #expect(p.problem() == "preset field audio[\(aac)].aacCoder must be twoloop or fast, is \"anmr\"")
        p.audio[aac].aacCoder = "fast"
        #expect(p.problem() == nil)
    }

    @Test func shortLecturesGetThreeSegments() throws {
        let p = try Preset.named("lecture", in: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets"))
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 600) == 6)
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 12.5) == 6)
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 12) == 4)
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 8) == 2)
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 6) == 6)  // one segment: nothing to switch to
        #expect(LadderPlan.segmentSeconds(preset: p, duration: 3) == 6)
    }

    @Test func leadSegmentOnlyForLecturesOfMoreThanTwoSegments() throws {
        var p = try Preset.named("lecture", in: URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Presets"))
        #expect(p.leadSegmentSeconds == 2)
        #expect(LadderPlan.leadSegmentSeconds(preset: p, duration: 600) == 2)
        #expect(LadderPlan.leadSegmentSeconds(preset: p, duration: 12.5) == 2)
        #expect(LadderPlan.leadSegmentSeconds(preset: p, duration: 12) == nil)
        #expect(LadderPlan.leadSegmentSeconds(preset: p, duration: 5) == nil)
        p.leadSegmentSeconds = 0.5  // shorter than a keyframe interval
        #expect(p.problem() == nil)
        p.leadSegmentSeconds = 2.5  // longer than a keyframe interval
        #expect(p.problem()?.contains("leadSegmentSeconds must be between 0.5 and keyframeSeconds (2.0), is 2.5") == true)
        p.leadSegmentSeconds = 0.2
        #expect(p.problem()?.contains("leadSegmentSeconds") == true)
        p.leadSegmentSeconds = nil
        #expect(p.problem() == nil)
    }

    @Test func keyframeTimesWithLeadSegments() {
        // 6-s segments, a keyframe time every 2 s, two 0.5-s lead segments: segments start at 0, 0.5,
        // 1, 7, 13, ...; keyframe times after the leads every 2 s from 1.
        let k = KeyframePlanner(segmentSeconds: 6, keyframeSeconds: 2, minChange: 0.25, lead: 0.5)
        #expect((0..<8).map { k.time(of: $0) } == [0, 0.5, 1, 3, 5, 7, 9, 11])
        #expect([0, 0.49, 0.5, 0.99, 1, 2.9, 3, 6.99, 7, 13.05].map { k.index(at: $0) } == [0, 0, 1, 1, 2, 2, 3, 4, 5, 8])
        #expect((0..<12).filter { k.startsSegment($0) } == [0, 1, 2, 5, 8, 11])
        // libavformat cuts at the first keyframe at or past 0.5, 1, 6.5, 12.5, ... (hls_init_time 0.5):
        // the first keyframe time at or past each of those is a segment start, whatever keyframes
        // picture changes add between segment starts.
        for cut in [0.5, 1, 6.5, 12.5, 18.5] {
            let first = (0..<20).first { k.time(of: $0) >= cut - 1e-9 }!
            #expect(k.startsSegment(first), "cut at \(cut) lands on keyframe time \(k.time(of: first))")
        }
        // Two 2-s leads on the 2-s grid: the muxer cuts at the first keyframe at or past 2, 4, 8, 14, ...,
        // so segments last 2, 2, 4, then 6 s.
        let long = KeyframePlanner(segmentSeconds: 6, keyframeSeconds: 2, minChange: 0.25, lead: 2)
        #expect((0..<8).map { long.time(of: $0) } == [0, 2, 4, 6, 8, 10, 12, 14])
        #expect((0..<12).filter { long.startsSegment($0) } == [0, 1, 2, 4, 7, 10])
        // 1-s leads: cuts at 1, 2, then the first keyframe at or past 7 (8), 13 (14), ...
        let one = KeyframePlanner(segmentSeconds: 6, keyframeSeconds: 2, minChange: 0.25, lead: 1)
        #expect((0..<12).filter { one.startsSegment($0) }.map { one.time(of: $0) } == [0, 1, 2, 8, 14, 20])
        for (planner, lead) in [(long, 2.0), (one, 1.0)] {
            for cut in [lead, 2 * lead] + (1...4).map({ lead + Double($0) * 6 }) {
                let first = (0..<30).first { planner.time(of: $0) >= cut - 1e-9 }!
                #expect(planner.startsSegment(first), "lead \(lead): cut at \(cut) lands on keyframe time \(planner.time(of: first))")
            }
            // One segment start for each cut, none between two cuts.
            let starts = (0..<30).filter { planner.startsSegment($0) }.map { planner.time(of: $0) }
            #expect(starts.count == 2 + 1 + Int((planner.time(of: 29) - lead + 1e-4) / 6), "lead \(lead): \(starts)")
        }
        let plain = KeyframePlanner(segmentSeconds: 6, keyframeSeconds: 2, minChange: 0.25)
        #expect((0..<7).map { plain.time(of: $0) } == [0, 2, 4, 6, 8, 10, 12])
        #expect((0..<7).filter { plain.startsSegment($0) } == [0, 3, 6])
        #expect([0, 1.5, 2, 5.9].map { plain.index(at: $0) } == [0, 0, 1, 2])
    }
}

@Suite(.blockingThreads) struct QueueTests {
    final class Token: @unchecked Sendable {
        let onDeinit: @Sendable () -> Void
        init(_ onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
        deinit { onDeinit() }
    }

    @Test func takenItemsAreReleasedAtOnce() {
        // A queue must not keep frames alive after the consumer took them: memory would grow with
        // every frame in flight.
        let freed = LockedBoxForTest(0)
        let q = BoundedQueue<Token>(capacity: 4)
        for _ in 0..<100 {
            #expect(q.put(Token { freed.add(1) }))
            _ = q.take()
        }
        #expect(freed.value == 100)
    }

    @Test func fullQueueBlocksProducerUntilConsumerTakes() {
        let q = BoundedQueue<Int>(capacity: 2)
        #expect(q.put(1) && q.put(2))
        let done = LockedBoxForTest(0)
        let t = Thread { if q.put(3) { done.add(1) } }
        t.start()
        Thread.sleep(forTimeInterval: 0.2)
        #expect(done.value == 0)
        #expect(q.take() == 1)
        for _ in 0..<50 where done.value == 0 { Thread.sleep(forTimeInterval: 0.02) }
        #expect(done.value == 1)
        q.finish()
        #expect(q.take() == 2 && q.take() == 3 && q.take() == nil)
    }
}

final class LockedBoxForTest: @unchecked Sendable {
    private let lock = NSLock()
    private var v: Int
    init(_ v: Int) { self.v = v }
    func add(_ n: Int) { lock.withLock { v += n } }
    var value: Int { lock.withLock { v } }
}

@Suite(.blockingThreads) struct LayerTests {
    /// The manifest as SwiftPM reads it (`swift package dump-package`, which evaluates Package.swift
    /// alone, in a scratch folder of its own so it never waits for the build's lock).
    static func manifest() throws -> [String: Any] {
        let scratch = try Support.scratch("manifest")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let r = try Support.run("/usr/bin/env", ["swift", "package", "--package-path", Support.repoRoot.path,
                                                 "--scratch-path", scratch.path, "dump-package"], timeout: 120)
        try #require(r.status == 0, "dump-package: \(r.stderr)")
        return try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    /// Each target's own targets: the names it depends on inside this package.
    static func targetGraph(_ manifest: [String: Any]) -> [String: [String]] {
        var graph: [String: [String]] = [:]
        for case let target as [String: Any] in manifest["targets"] as? [Any] ?? [] {
            let name = target["name"] as? String ?? ""
            graph[name] = (target["dependencies"] as? [[String: Any]] ?? []).compactMap { dep in
                ((dep["byName"] ?? dep["target"]) as? [Any])?.first as? String
            }
        }
        return graph
    }

    static func closure(of name: String, in graph: [String: [String]]) -> Set<String> {
        var seen: Set<String> = []
        var todo = graph[name] ?? []
        while let next = todo.popLast() {
            if seen.insert(next).inserted { todo += graph[next] ?? [] }
        }
        return seen
    }

    /// The package graph holds the layers: Course, Server, CommandSupport, the server's program and the
    /// package model cannot reach FFmpeg, Tesseract or the pipeline at all (an import of them does not
    /// build), and only the pipeline, the command line and these tests depend on it.
    @Test func ffmpegIsOutOfReachAboveThePipeline() throws {
        let graph = Self.targetGraph(try Self.manifest())
        let pipeline: Set = ["Lecture", "FFmpeg", "CFFmpeg", "CFFmpegShims", "OCR", "CTesseract"]
        for target in ["LectureModel", "Course", "Server", "CommandSupport", "coursepack-server"] {
            #expect(graph[target] != nil, "\(target) is not a target")
            let reached = Self.closure(of: target, in: graph).intersection(pipeline)
            #expect(reached.isEmpty, "\(target) reaches \(reached.sorted())")
        }
        let dependsOnPipeline = graph.filter { $0.value.contains("Lecture") }.keys.sorted()
        #expect(dependsOnPipeline == ["CoursePackTests", "coursepack"], "\(dependsOnPipeline)")
        #expect(Self.closure(of: "coursepack", in: graph).isSuperset(of: pipeline))
    }

    /// Every Swift target, the tests included, builds with the layer settings: imports internal unless
    /// marked, members visible only where their module is imported.
    @Test func everySwiftTargetHasTheLayerSettings() throws {
        var checked = 0
        for case let target as [String: Any] in try Self.manifest()["targets"] as? [Any] ?? [] {
            let name = target["name"] as? String ?? ""
            let type = target["type"] as? String ?? ""
            let folder = Support.repoRoot.appendingPathComponent(type == "test" ? "Tests" : "Sources").appendingPathComponent(name)
            let files = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
            guard files.contains(where: { $0.hasSuffix(".swift") }) else { continue }
            let settings = "\(target["settings"] ?? "")"
            for feature in ["InternalImportsByDefault", "MemberImportVisibility"] {
                #expect(settings.contains(feature), "\(name) builds without \(feature)")
            }
            checked += 1
        }
        #expect(checked >= 9)
    }

    /// The module an import line names, whatever its form (`import X`, `public import X`,
    /// `import struct X.Y`, `@_exported import X`, `@testable import X`), or nil for another line.
    static func importedModule(_ line: Substring) -> String? {
        var words = line.split(separator: " ").map(String.init)
        while let first = words.first, first.hasPrefix("@") || ["public", "package", "internal", "fileprivate", "private"].contains(first) {
            words.removeFirst()
        }
        guard words.first == "import", words.count >= 2 else { return nil }
        let kinds: Set = ["struct", "class", "enum", "protocol", "typealias", "func", "var", "let"]
        let path = words.count >= 3 && kinds.contains(words[1]) ? words[2] : words[1]
        return path.split(separator: ".").first.map(String.init)
    }

    /// FFmpeg's C modules are imported only by the FFmpeg wrapper, and only `internal`; the wrapper
    /// and Tesseract's wrapper only by Lecture; Tesseract's C module only by the OCR wrapper. No file
    /// re-exports a module (`@_exported`), which would carry a lower layer into the layers above.
    @Test func cStaysBelowTheWrapper() throws {
        #expect(Self.importedModule("import struct FFmpeg.Frame") == "FFmpeg")
        #expect(Self.importedModule("@_exported public import CFFmpeg") == "CFFmpeg")
        #expect(Self.importedModule("let important = 1") == nil)
        var checked = 0
        for root in ["Sources", "Tests"] {
            let base = Support.repoRoot.appendingPathComponent(root)
            for target in try FileManager.default.contentsOfDirectory(atPath: base.path) {
                let dir = base.appendingPathComponent(target)
                for file in (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? [] where file.hasSuffix(".swift") {
                    let text = try String(contentsOf: dir.appendingPathComponent(file), encoding: .utf8)
                    checked += 1
                    for line in text.split(separator: "\n") {
                        let trimmed = line.drop(while: { $0 == " " })
                        guard let module = Self.importedModule(trimmed) else { continue }
                        let where_ = "\(root)/\(target)/\(file): \(line)"
                        #expect(!trimmed.contains("@_exported"), "\(where_)")
                        let isPublic = trimmed.contains("public import") || trimmed.contains("package import")
                        if module.hasPrefix("CFFmpeg") { #expect(target == "FFmpeg" && !isPublic, "\(where_)") }
                        if module == "CTesseract" { #expect(target == "OCR" && !isPublic, "\(where_)") }
                        if module == "FFmpeg" || module == "OCR" {
                            #expect(["Lecture", "CoursePackTests"].contains(target) && !isPublic, "\(where_)")
                        }
                        if module == "Lecture" { #expect(["coursepack", "coursepack-fuzz", "CoursePackTests"].contains(target), "\(where_)") }
                    }
                }
            }
        }
        #expect(checked > 60)
    }
}

/// The child-process contract: what the parent starts the child with and reads from it.
@Suite(.blockingThreads) struct WorkerProtocolTests {
    @Test func eventsRoundTripInTheDocumentedWireFormat() throws {
        let progress = TranscodeEvent.progress(position: 12.5, duration: 100, percent: 12.5, speed: 3.25, eta: nil)
        let line = progress.jsonLine { _ in 0 }
        #expect(line == #"{"duration":100,"eta":-1,"event":"progress","percent":12.5,"position":12.5,"speed":3.25}"#)
        #expect(TranscodeEvent(line: line) == progress)
        let error = TranscodeEvent.error(category: .badInput, path: "/in/x.mp4", reason: "no video or audio stream")
        let errorLine = error.jsonLine { $0 == .badInput ? 65 : 1 }
        #expect(errorLine.contains(#""category":"badInput""#) && errorLine.contains(#""exitCode":65"#), "\(errorLine)")
        #expect(TranscodeEvent(line: errorLine) == error)
        // The summary object and other lines are not events.
        #expect(TranscodeEvent(line: #"{"master": {}}"#) == nil)
        #expect(TranscodeEvent(line: "warning: something") == nil)
        #expect(TranscodeEvent(line: #"{"event":"progress"}"#) == nil)
    }

    @Test func requestArgumentsNameEveryField() {
        var r = TranscodeRequest(source: "/in/a.mp4", destination: "/out/a", presetFile: "/p.json", buildKey: "k1", cores: 2)
        r.captions = [CaptionInput(path: "/in/a.srt", language: "en"), CaptionInput(path: "/in/b.vtt", language: nil)]
        r.renditionsOnly = true
        #expect(r.arguments == ["transcode", "/in/a.mp4", "-o", "/out/a", "--preset", "/p.json", "--json", "--cores", "2",
                                "--build-key", "k1", "--captions", "/in/a.srt:en", "--captions", "/in/b.vtt", "--renditions-only"])
    }
}

/// A full disk is named where the write meets it, whichever file of the package it was.
@Suite(.blockingThreads) struct OutputFileTests {
    @Test func writeToAFullDeviceSaysDiskFull() throws {
        // /dev/full answers every write with ENOSPC.
        let error = #expect(throws: CoursePackError.self) { try OutputFile.write("#EXTM3U\n", to: URL(fileURLWithPath: "/dev/full")) }
        #expect(error?.category == .output)
        #expect(error?.reason == CoursePackError.diskFullReason)
        #expect(error?.path == "/dev/full")
    }

    @Test func otherWriteFailuresKeepTheSystemsReason() throws {
        let missing = URL(fileURLWithPath: "/nonexistent-folder/master.m3u8")
        let error = #expect(throws: CoursePackError.self) { try OutputFile.write("#EXTM3U\n", to: missing) }
        #expect(error?.category == .output)
        #expect(error?.reason == "cannot create: No such file or directory")
    }

    @Test func aRenditionsFullDiskIsAnOutputError() {
        let enospc = MediaError(kind: .io, operation: "writing segment", message: "No space left on device", code: -ENOSPC)
        #expect(enospc.isNoSpace)
        let full = CoursePackError.rendition("v360", path: "/out/pkg", enospc)
        #expect(full.category == .output && full.reason.hasPrefix(CoursePackError.diskFullReason))
        let other = CoursePackError.rendition("v360", path: "/out/pkg", MediaError(kind: .other, operation: "encoding", message: "x", code: -22))
        #expect(other.category == .internal)
        let own = CoursePackError(.badInput, path: "/in.mp4", "bad")
        #expect(CoursePackError.rendition("v360", path: "/out/pkg", own).category == .badInput)
    }
}

/// One failure category, typed from the worker up to the server's JSON; the documents list exactly its cases.
@Suite(.blockingThreads) struct FailureCategoryTests {
    static func enumValues(_ file: String, under key: String) throws -> [[String]] {
        // Every "category" object with an enum in the document.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Support.repoRoot.appendingPathComponent(file)))
        var found: [[String]] = []
        func walk(_ v: Any) {
            if let d = v as? [String: Any] {
                if let c = d[key] as? [String: Any], let e = c["enum"] as? [String] { found.append(e) }
                d.values.forEach(walk)
            } else if let a = v as? [Any] { a.forEach(walk) }
        }
        walk(json)
        return found
    }

    @Test func documentsListExactlyTheCategories() throws {
        let cases = Set(FailureCategory.allCases.map(\.rawValue))
        for file in ["docs/openapi.json", "docs/course.schema.json"] {
            let lists = try Self.enumValues(file, under: "category")
            #expect(!lists.isEmpty, "\(file) documents no category enum")
            for l in lists { #expect(Set(l) == cases, "\(file): \(l.sorted()) vs \(cases.sorted())") }
        }
    }

    @Test func everyErrorCategoryIsAFailureCategoryOfTheSameName() {
        for c in CoursePackError.Category.allCases { #expect(FailureCategory(c).rawValue == c.rawValue) }
        #expect(!FailureCategory.badInput.isTransient && !FailureCategory.usage.isTransient)
        #expect(FailureCategory.crashed.isTransient && FailureCategory.hung.isTransient)
    }
}

/// The tests' own process runner: it must not wait for grandchildren, nor hand this process's
/// descriptors to the processes it starts.
@Suite(.blockingThreads) struct ChildTests {
    @Test func runReturnsWhileAGrandchildHoldsTheOutput() throws {
        let r = try Support.run("bash", ["-c", "sleep 120 & echo $!"])
        let sleeper = try #require(Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        defer { kill(sleeper, SIGKILL) }
        #expect(r.status == 0)
        #expect(kill(sleeper, 0) == 0, "the run waited for its grandchild to end")
    }

    @Test func aChildInheritsOnlyStdinStdoutAndStderr() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { for fd in fds { close(fd) } }
        let child = try Child("/bin/sleep", ["30"])
        defer { child.send(SIGKILL); child.wait() }
        // posix_spawn returns once the child has called exec, while the dynamic loader and sleep's
        // locale setup may still hold a descriptor of their own for a moment (fd 3 was seen on a loaded
        // machine); an inherited descriptor stays for as long as the child lives.
        var open: [String] = []
        for _ in 0..<50 {
            open = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(child.pid)/fd").sorted()
            if open == ["0", "1", "2"] { break }
            usleep(100_000)
        }
        #expect(open == ["0", "1", "2"])
        child.send(SIGTERM)
        child.wait()
        #expect(child.signal == SIGTERM)
    }
}

/// The decode loop's guard against a decoder that fails on every call (OnePass.receiveAll).
@Suite(.blockingThreads) struct ReceiveLoopTests {
    static let bad = MediaError(kind: .invalidData, operation: "receiving a frame", message: "Invalid data found when processing input")

    @Test func aDecoderThatKeepsFailingStopsTheLoop() {
        var calls = 0, counted = 0
        // Ends after 1,000 calls, so a loop without the guard fails this test instead of hanging it.
        #expect(throws: OnePass.DecoderStuck.self) {
            try OnePass.receiveAll(from: { () throws -> Pull<Int> in
                calls += 1
                if calls > 1000 { return .endOfStream }
                throw Self.bad
            }, dataError: { counted += 1 }, handle: { _ in })
        }
        #expect(calls == OnePass.maxReceiveErrorsInARow)
        #expect(counted == OnePass.maxReceiveErrorsInARow)
    }

    @Test func badPacketsBetweenFramesAreSkipped() throws {
        // 63 failures, a frame, 63 failures, a frame, then the decoder wants input.
        var script: [Pull<Int>?] = Array(repeating: nil, count: 63) + [.value(1)] + Array(repeating: nil, count: 63) + [.value(2), .needsInput]
        var got: [Int] = [], counted = 0
        try OnePass.receiveAll(from: { () throws -> Pull<Int> in
            let next = script.removeFirst()
            guard let next else { throw Self.bad }
            return next
        }, dataError: { counted += 1 }, handle: { got.append($0) })
        #expect(got == [1, 2])
        #expect(counted == 126)
        #expect(script.isEmpty)
    }

    @Test func anErrorThatDoesNotBlameTheInputIsThrownAtOnce() {
        let noMemory = MediaError(kind: .other, operation: "receiving a frame", message: "Cannot allocate memory", code: -ENOMEM)
        var calls = 0
        #expect(throws: MediaError.self) {
            try OnePass.receiveAll(from: { () throws -> Pull<Int> in
                calls += 1
                throw noMemory
            }, dataError: {}, handle: { _ in })
        }
        #expect(calls == 1)
    }
}
