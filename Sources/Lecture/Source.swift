import Foundation
public import LectureModel
import FFmpeg

/// An input opened under the untrusted-input policy, with its facts.
public final class OpenedSource {
    let demuxer: Demuxer
    public let info: SourceInfo

    init(demuxer: Demuxer, info: SourceInfo) {
        self.demuxer = demuxer
        self.info = info
    }
}

public enum Source {
    /// Opens `path` as an untrusted upload: local file only, allowlisted containers, capped probing,
    /// and the limits checked before any decoding. Errors name the file and the reason.
    public static func open(_ path: String, limits: Limits = Limits()) throws -> OpenedSource {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw CoursePackError(.badInput, path: path, "no such file")
        }
        if isDir.boolValue { throw CoursePackError(.badInput, path: path, "is a directory, not a media file") }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CoursePackError(.badInput, path: path, "permission denied")
        }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if size == 0 { throw CoursePackError(.badInput, path: path, "file is empty (0 bytes)") }

        var options = DemuxerOptions()
        options.allowedFormats = allowedContainers
        options.allowedProtocols = ["file"]
        options.probeSize = limits.probeSize
        options.analyzeDuration = limits.analyzeDuration
        options.deadline = limits.timeout
        let demuxer: Demuxer
        do {
            // "file:" keeps a name like "http:x.mp4" or "concat:a|b" from selecting another protocol.
            demuxer = try Demuxer(path: "file:" + path, options: options)
        } catch let e as MediaError {
            if e.kind == .invalidData {
                throw CoursePackError(.badInput, path: path, "not a supported media file: \(e.message)")
            }
            throw CoursePackError.input(path, e)
        }
        let info = describe(demuxer, path: path, size: size)
        try check(info, limits: limits)
        return OpenedSource(demuxer: demuxer, info: info)
    }

    static func describe(_ demuxer: Demuxer, path: String, size: Int?) -> SourceInfo {
        var notes: [String] = []
        let streams = demuxer.streams
        var video: SourceInfo.Video?
        let videoCandidates = streams.filter { $0.kind == .video && !$0.isAttachedPicture && $0.width > 0 }
        let best = demuxer.bestStream(.video)
        if let s = videoCandidates.first(where: { $0.index == best }) ?? videoCandidates.first {
            let sar = s.sampleAspectRatio.isValid ? s.sampleAspectRatio : Rational(1, 1)
            var dw = Int((Double(s.width) * sar.value).rounded())
            var dh = s.height
            if s.rotation == 90 || s.rotation == 270 { swap(&dw, &dh) }
            let avg = s.averageFrameRate.isValid ? s.averageFrameRate.value : 0
            let real = s.realFrameRate.isValid ? s.realFrameRate.value : 0
            let fps = avg > 0 && avg <= 240 ? avg : (real > 0 && real <= 240 ? real : 30)
            video = SourceInfo.Video(
                index: s.index, codec: s.codecName, profile: s.profile, width: s.width, height: s.height,
                pixelFormat: s.pixelFormat?.name ?? "unknown", bitDepth: s.pixelFormat?.bitDepth ?? 8,
                sampleAspectRatio: "\(sar.num):\(sar.den)", rotation: s.rotation,
                displayWidth: dw, displayHeight: dh, frameRate: (fps * 1000).rounded() / 1000,
                variableFrameRate: avg > 0 && real > 0 && abs(avg - real) / real > 0.01,
                fieldOrder: s.fieldOrder.rawValue, bitRate: s.bitRate)
            if videoCandidates.count > 1 { notes.append("\(videoCandidates.count) video streams: using stream #\(s.index)") }
        }
        let audioStreams = streams.filter { $0.kind == .audio && $0.channels > 0 }
        let audio = audioStreams.map {
            SourceInfo.Audio(index: $0.index, codec: $0.codecName, sampleRate: $0.sampleRate, channels: $0.channels,
                             layout: $0.channelLayout, language: $0.language, title: $0.title, isDefault: $0.isDefault, bitRate: $0.bitRate)
        }
        var selected: Int?
        if !audio.isEmpty {
            let bestAudio = demuxer.bestStream(.audio)
            let chosen = audio.first(where: \.isDefault) ?? audio.first(where: { $0.index == bestAudio }) ?? audio[0]
            selected = chosen.index
            if audio.count > 1 {
                let why = chosen.isDefault ? "the default track" : "no track is marked default; the best one"
                notes.append("\(audio.count) audio tracks: using stream #\(chosen.index)\(chosen.language.map { " (\($0))" } ?? "") as \(why)")
            }
        }
        let duration = demuxer.duration ?? streams.compactMap(\.duration).max() ?? 0
        return SourceInfo(path: path, container: demuxer.formatName, containerName: demuxer.formatLongName,
                          duration: duration, startTime: demuxer.startTime ?? 0, sizeBytes: size ?? demuxer.fileSize,
                          bitRate: demuxer.bitRate, video: video, audio: audio, selectedAudio: selected, notes: notes)
    }

    static func check(_ info: SourceInfo, limits: Limits) throws {
        let path = info.path
        if info.video == nil && info.selectedAudio == nil {
            throw CoursePackError(.badInput, path: path, "no video or audio stream to package")
        }
        if let v = info.video {
            if max(v.width, v.height) > limits.maxLongSide {
                throw CoursePackError(.badInput, path: path, "picture \(v.width)x\(v.height) exceeds the limit of \(limits.maxLongSide) pixels on the long side")
            }
            if v.width * v.height > limits.maxPixels {
                throw CoursePackError(.badInput, path: path, "picture \(v.width)x\(v.height) exceeds the limit of \(limits.maxPixels) pixels")
            }
        }
        if info.duration > limits.maxDuration {
            throw CoursePackError(.badInput, path: path, String(format: "duration %.0f s exceeds the limit of %.0f s", info.duration, limits.maxDuration))
        }
    }
}
