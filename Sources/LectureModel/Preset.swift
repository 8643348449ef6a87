public import Foundation

/// A ladder of renditions and how to encode them, read from a JSON file in Presets/.
/// The format is documented in Presets/README.md.
public struct Preset: Codable, Sendable {
    public struct Rung: Codable, Sendable {
        /// Directory and display name, e.g. "v720".
        public var name: String
        /// Target length of the picture's short side in pixels (720 for 1280x720, and for a portrait 720x1280).
        public var height: Int
        /// x264 constant rate factor: lower is better quality.
        public var crf: Double
        /// Cap on the video bitrate (VBV maxrate), kb/s.
        public var maxKbps: Int
        /// VBV buffer, kb/s; defaults to twice maxKbps.
        public var bufferKbps: Int?
        /// Frame rate cap; frames above it are dropped, keyframe positions are kept.
        public var maxFps: Double?
        /// Name of the audio rendition players pair with this rung.
        public var audio: String
        /// x264 preset for this rung; defaults to the preset-wide one.
        public var x264Preset: String?
        /// x264 options for this rung, after the preset-wide `x264Params` (a later value wins).
        public var x264Params: String?
    }

    public struct Audio: Codable, Sendable {
        public var name: String
        /// "aac" (AAC-LC, the default, which every HLS player takes) or "opus" (libopus; better speech at
        /// low rates, for players that take Opus in fMP4).
        public var codec: String?
        public var kbps: Int
        /// FFmpeg's AAC quantiser search: "twoloop" (the default) or "fast". On the bench speech, "fast"
        /// at 80 kb/s stereo and 32 kb/s mono scores a higher wideband PESQ than "twoloop" at 96 and 36
        /// in as many bytes, for a quarter of the encoder's CPU time; at 24 kb/s mono "twoloop" scores
        /// higher (BENCHMARKS.md). "fast" overshoots its bit rate by 10-20%, so `kbps` is set lower.
        public var aacCoder: String?
        /// The values `aacCoder` takes, and the one an AAC rendition gets without it (FFmpeg's own).
        static let aacCoders = ["twoloop", "fast"]
        static let defaultAACCoder = "twoloop"
        /// 1 or 2; a mono source stays mono.
        public var channels: Int
        /// Output sample rate; defaults to 48000 (44100 sources keep 44100).
        public var sampleRate: Int?
        /// Offer this rendition on its own as the audio-only variant.
        public var audioOnly: Bool?
    }

    public var name: String
    public var description: String?
    /// Target segment length, seconds; a multiple of keyframeSeconds.
    public var segmentSeconds: Double
    /// Distance between keyframes, seconds.
    public var keyframeSeconds: Double
    /// Length of each of the two short segments that open a lecture, seconds (at most
    /// `keyframeSeconds`); later cuts fall at the first keyframe at or past the lead plus each multiple
    /// of `segmentSeconds`. Nil: every segment is `segmentSeconds`. Chromium's player fetches the first
    /// segment twice and then waits for the second before it starts, so on a weak link these two
    /// short segments are what bring the first picture forward.
    public var leadSegmentSeconds: Double?
    /// Whether each video variant carries its sound in its own segments (the default) instead of
    /// naming an audio rendition group. Muxed, a player fetches one playlist, one init segment and
    /// one series of segments before the first picture instead of two of each; Chromium's player
    /// cannot switch between a muxed variant and one with an audio group, so it is all or nothing.
    public var muxAudio: Bool?
    /// Share of the picture (0...1) that must change since the last keyframe for a keyframe inside a
    /// segment; segment starts always get one. Nil or 0: a keyframe every keyframeSeconds.
    public var keyframeMinChange: Double?
    /// x264 speed preset, e.g. "veryfast".
    public var x264Preset: String
    /// x264 tune, e.g. "stillimage"; none by default.
    public var x264Tune: String?
    /// Extra x264 parameters, "key=value:key=value".
    public var x264Params: String?
    public var rungs: [Rung]
    public var audio: [Audio]
    /// Tesseract languages for reading chapter titles off the slides, e.g. "eng" or "chi_sim+eng" (the
    /// first is tried first); nil means "eng", "" reads no text (chapters keep numbered titles).
    public var ocrLanguages: String?
    /// A CTranslate2 Whisper model folder: captions and a transcript from the speech (docs/SPEECH.md);
    /// nil: none, unless `--asr-model` or `$COURSEPACK_ASR_MODEL` names one.
    public var asrModel: String?
    /// The lectures' language for the speech stage (ISO 639-1); nil: detected.
    public var language: String?
    /// Rung offered as a progressive MP4 download (with its audio); the planned rung nearest below it
    /// when the source is smaller. Nil for no video download (the audio-only M4A is always made).
    public var download: String?

    /// SHA-256 of the preset's canonical JSON (sorted keys): equal for presets that encode alike.
    public var fingerprint: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Hashing.sha256Hex((try? encoder.encode(self)) ?? Data())
    }

    /// Preset files shipped in Presets/.
    public static func named(_ name: String, in directory: URL) throws -> Preset {
        try load(directory.appendingPathComponent("\(name).json"))
    }

    /// Loads and validates a preset file; errors name the file and the field.
    public static func load(_ url: URL) throws -> Preset {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw CoursePackError(.usage, path: url.path, "cannot read preset: \((error as NSError).localizedDescription)")
        }
        let preset: Preset
        do {
            preset = try JSONDecoder().decode(Preset.self, from: data)
        } catch let DecodingError.keyNotFound(key, ctx) {
            throw CoursePackError(.usage, path: url.path, "preset field \(fieldPath(ctx.codingPath + [key])) is missing")
        } catch let DecodingError.typeMismatch(_, ctx), let DecodingError.valueNotFound(_, ctx) {
            throw CoursePackError(.usage, path: url.path, "preset field \(fieldPath(ctx.codingPath)) has the wrong type: \(ctx.debugDescription)")
        } catch let DecodingError.dataCorrupted(ctx) {
            throw CoursePackError(.usage, path: url.path, "preset is not valid JSON\(ctx.codingPath.isEmpty ? "" : " at \(fieldPath(ctx.codingPath))"): \(ctx.underlyingError.map { ($0 as NSError).localizedDescription } ?? ctx.debugDescription)")
        } catch {
            throw CoursePackError(.usage, path: url.path, "preset cannot be read: \(error)")
        }
        if let field = unknownField(in: data, preset: preset) {
            throw CoursePackError(.usage, path: url.path, "preset field \(field) is not one this version knows (Presets/README.md)")
        }
        if let problem = preset.problem() {
            throw CoursePackError(.usage, path: url.path, problem)
        }
        return preset
    }

    /// The first field of the file that no property of the preset, a rung or an audio rendition takes:
    /// a misspelt optional field would otherwise be dropped without a word.
    static func unknownField(in data: Data, preset: Preset) -> String? {
        guard let top = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        func names(_ value: Any) -> Set<String> { Set(Mirror(reflecting: value).children.compactMap(\.label)) }
        if let k = top.keys.sorted().first(where: { !names(preset).contains($0) }) { return k }
        let nested: [(String, Any?)] = [("rungs", preset.rungs.first), ("audio", preset.audio.first)]
        for case let (field, sample?) in nested {
            let known = names(sample)
            for (i, item) in ((top[field] as? [[String: Any]]) ?? []).enumerated() {
                if let k = item.keys.sorted().first(where: { !known.contains($0) }) { return "\(field)[\(i)].\(k)" }
            }
        }
        return nil
    }

    private static func fieldPath(_ path: [CodingKey]) -> String {
        path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
    }

    /// The first rule the preset breaks, naming the field; nil when it is sound.
    public func problem() -> String? {
        let x264Presets = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo"]
        if !(1...30).contains(segmentSeconds) { return "preset field segmentSeconds must be between 1 and 30, is \(segmentSeconds)" }
        if !(0.5...10).contains(keyframeSeconds) { return "preset field keyframeSeconds must be between 0.5 and 10, is \(keyframeSeconds)" }
        let ratio = segmentSeconds / keyframeSeconds
        if abs(ratio - ratio.rounded()) > 1e-9 { return "preset field segmentSeconds (\(segmentSeconds)) must be a multiple of keyframeSeconds (\(keyframeSeconds))" }
        if let l = leadSegmentSeconds, !(l >= 0.5 && l <= keyframeSeconds) {
            return "preset field leadSegmentSeconds must be between 0.5 and keyframeSeconds (\(keyframeSeconds)), is \(l)"
        }
        if let c = keyframeMinChange, !(0...1).contains(c) { return "preset field keyframeMinChange must be between 0 and 1, is \(c)" }
        if !x264Presets.contains(x264Preset) { return "preset field x264Preset must be one of \(x264Presets.joined(separator: ", ")), is \"\(x264Preset)\"" }
        if audio.isEmpty { return "preset field audio must list at least one rendition" }
        if !audio.contains(where: { $0.audioOnly == true }) { return "preset field audio must mark one rendition audioOnly" }
        var names = Set<String>()
        for (i, a) in audio.enumerated() {
            let f = "audio[\(i)]"
            if !isSafeName(a.name) { return "preset field \(f).name must be letters, digits, - or _, is \"\(a.name)\"" }
            if !names.insert(a.name).inserted { return "preset field \(f).name \"\(a.name)\" is used twice" }
            let codec = a.codec ?? "aac"
            if !["aac", "opus"].contains(codec) { return "preset field \(f).codec must be aac or opus, is \"\(codec)\"" }
            let kbpsRange = codec == "opus" ? 6...256 : 16...320
            if !kbpsRange.contains(a.kbps) { return "preset field \(f).kbps must be between \(kbpsRange.lowerBound) and \(kbpsRange.upperBound) for \(codec), is \(a.kbps)" }
            if !(1...2).contains(a.channels) { return "preset field \(f).channels must be 1 or 2, is \(a.channels)" }
            if let r = a.sampleRate, ![22050, 24000, 32000, 44100, 48000].contains(r) { return "preset field \(f).sampleRate must be 22050, 24000, 32000, 44100 or 48000, is \(r)" }
            if codec == "opus", let r = a.sampleRate, r != 48000 { return "preset field \(f).sampleRate must be 48000 for opus, is \(r)" }
            if let c = a.aacCoder {
                if codec != "aac" { return "preset field \(f).aacCoder is for aac renditions, and this one is \(codec)" }
                if !Audio.aacCoders.contains(c) { return "preset field \(f).aacCoder must be \(Audio.aacCoders.joined(separator: " or ")), is \"\(c)\"" }
            }
        }
        if rungs.isEmpty { return "preset field rungs must list at least one rung" }
        for (i, r) in rungs.enumerated() {
            let f = "rungs[\(i)]"
            if !isSafeName(r.name) { return "preset field \(f).name must be letters, digits, - or _, is \"\(r.name)\"" }
            if !names.insert(r.name).inserted { return "preset field \(f).name \"\(r.name)\" is used twice" }
            if !(64...4320).contains(r.height) { return "preset field \(f).height must be between 64 and 4320, is \(r.height)" }
            if !(0...51).contains(r.crf) { return "preset field \(f).crf must be between 0 and 51, is \(r.crf)" }
            if !(16...100_000).contains(r.maxKbps) { return "preset field \(f).maxKbps must be between 16 and 100000, is \(r.maxKbps)" }
            if let b = r.bufferKbps, !(16...200_000).contains(b) { return "preset field \(f).bufferKbps must be between 16 and 200000, is \(b)" }
            if let fps = r.maxFps, !(1...120).contains(fps) { return "preset field \(f).maxFps must be between 1 and 120, is \(fps)" }
            if !audio.contains(where: { $0.name == r.audio }) { return "preset field \(f).audio names \"\(r.audio)\", which is not in audio" }
            if let p = r.x264Preset, !x264Presets.contains(p) { return "preset field \(f).x264Preset must be one of \(x264Presets.joined(separator: ", ")), is \"\(p)\"" }
        }
        if Set(rungs.map(\.height)).count != rungs.count { return "preset field rungs has two rungs of the same height" }
        if let l = ocrLanguages, let problem = Self.ocrLanguagesProblem(l) { return "preset field ocrLanguages \(problem)" }
        if let l = language, let problem = SpeechOptions.languageProblem(l) { return "preset field language \(problem)" }
        if let m = asrModel, m.isEmpty { return "preset field asrModel must name a model folder" }
        if let d = download, !rungs.contains(where: { $0.name == d }) { return "preset field download names \"\(d)\", which is not in rungs" }
        return nil
    }

    /// Why a Tesseract language list is malformed, or nil: up to five names of 3-16 lower-case letters or
    /// _, joined by +; "" for none.
    public static func ocrLanguagesProblem(_ l: String) -> String? {
        if l.isEmpty { return nil }
        let names = l.split(separator: "+", omittingEmptySubsequences: false)
        let ok = names.count <= 5 && names.allSatisfy { n in
            (3...16).contains(n.count) && n.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0 == "_" }
        }
        return ok ? nil : "must be Tesseract language names joined by + (e.g. \"chi_sim+eng\"), is \"\(l.prefix(40))\""
    }

    private func isSafeName(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 32 && s.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || $0 == "-" || $0 == "_" }
    }
}
