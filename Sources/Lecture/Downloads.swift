public import Foundation
import FFmpeg

/// A file for learners who download on Wi-Fi and watch offline.
public struct DownloadSummary: Sendable, Codable {
    public var kind: String  // "video" (MP4 with audio) or "audio" (M4A)
    public var path: String
    public var bytes: Int
    /// The renditions it was made from.
    public var video: String?
    public var audio: String
}

/// Progressive (fast-start, unfragmented) MP4 and M4A files remuxed from a rendition's own segments:
/// no decoding and no encoding, the bytes learners stream are the bytes they download.
enum Downloads {
    static func write(package: URL, video: String?, audio: String) throws -> [DownloadSummary] {
        let dir = package.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var out: [DownloadSummary] = []
        if let video {
            let name = "lecture-\(video).mp4"
            try remux([video, audio], package: package, to: dir.appendingPathComponent(name))
            out.append(DownloadSummary(kind: "video", path: "downloads/\(name)", bytes: size(dir.appendingPathComponent(name)),
                                       video: video, audio: audio))
        }
        let name = "lecture-\(audio).m4a"
        try remux([audio], package: package, to: dir.appendingPathComponent(name))
        out.append(DownloadSummary(kind: "audio", path: "downloads/\(name)", bytes: size(dir.appendingPathComponent(name)),
                                   video: nil, audio: audio))
        return out
    }

    private static func size(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int) ?? 0
    }

    /// Joins each rendition's init segment and media segments into one fragmented MP4, then copies
    /// their packets, interleaved by time, into a fast-start MP4.
    private static func remux(_ renditions: [String], package: URL, to output: URL) throws {
        var joined: [URL] = []
        defer { joined.forEach { try? FileManager.default.removeItem(at: $0) } }
        var inputs: [(demuxer: Demuxer, stream: Int, out: Int)] = []
        let muxer = try Muxer(path: output.path, format: output.pathExtension == "m4a" ? "ipod" : "mp4")
        for r in renditions {
            let dir = package.appendingPathComponent(r)
            let playlist = try MediaPlaylist(contentsOf: dir.appendingPathComponent("index.m3u8"))
            let tmp = package.appendingPathComponent(".join-\(r).mp4")
            guard FileManager.default.createFile(atPath: tmp.path, contents: nil) else {
                throw CoursePackError(.output, path: tmp.path, "cannot create file")
            }
            let handle = try FileHandle(forWritingTo: tmp)
            for file in (playlist.mapURI.map { [$0] } ?? []) + playlist.segments.map(\.uri) {
                try handle.write(contentsOf: Data(contentsOf: dir.appendingPathComponent(file)))
            }
            try handle.close()
            joined.append(tmp)
            var options = DemuxerOptions()
            options.allowedFormats = ["mov"]
            let d = try Demuxer(path: "file:" + tmp.path, options: options)
            guard let s = d.streams.first(where: { $0.kind == .video || $0.kind == .audio }) else {
                throw CoursePackError(.internal, path: dir.path, "rendition has no stream to download")
            }
            inputs.append((d, s.index, try muxer.addStream(copying: s.index, of: d)))
        }
        try muxer.writeHeader(options: ["movflags": "+faststart"])
        // Merge the inputs by presentation time so the file interleaves audio and video.
        var heads: [Packet?] = try inputs.map { try next($0.demuxer, stream: $0.stream) }
        while true {
            var pick: Int?
            for (i, p) in heads.enumerated() where p != nil {
                if pick == nil || order(p!) < order(heads[pick!]!) { pick = i }
            }
            guard let i = pick else { break }
            try muxer.write(heads[i]!, stream: inputs[i].out)
            heads[i] = try next(inputs[i].demuxer, stream: inputs[i].stream)
        }
        try muxer.finish()
    }

    /// Decoding time in seconds: the order muxers want.
    private static func order(_ p: Packet) -> Double {
        (p.dts ?? p.pts).map { p.timeBase.seconds($0) } ?? -.infinity
    }

    private static func next(_ d: Demuxer, stream: Int) throws -> Packet? {
        while let p = try d.read() {
            if p.streamIndex == stream { return p }
        }
        return nil
    }
}
