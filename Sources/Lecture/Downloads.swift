import Foundation
import LectureModel
import FFmpeg

/// Progressive (fast-start, unfragmented) MP4 and M4A files remuxed from a rendition's own segments:
/// no decoding and no encoding, the bytes learners stream are the bytes they download.
enum Downloads {
    /// - Parameters:
    ///   - audio: the audio rendition's name (for the file names and the summary).
    ///   - audioFolder: the folder whose segments carry that audio: its own, or the video rendition's.
    ///   - muxed: the video rendition's segments carry its sound.
    static func write(package: URL, video: String?, audio: String, audioFolder: String, muxed: Bool) throws -> [DownloadSummary] {
        let dir = package.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var out: [DownloadSummary] = []
        if let video {
            let name = "lecture-\(video).mp4"
            let picture: Set<MediaKind> = [.video], sound: Set<MediaKind> = [.audio]
            let inputs = muxed ? [(video, picture.union(sound))] : [(video, picture), (audioFolder, sound)]
            try remux(inputs, package: package, to: dir.appendingPathComponent(name))
            out.append(DownloadSummary(kind: "video", path: "downloads/\(name)", bytes: size(dir.appendingPathComponent(name)),
                                       video: video, audio: audio))
        }
        let name = "lecture-\(audio).m4a"
        try remux([(audioFolder, Set([MediaKind.audio]))], package: package, to: dir.appendingPathComponent(name))
        out.append(DownloadSummary(kind: "audio", path: "downloads/\(name)", bytes: size(dir.appendingPathComponent(name)),
                                   video: nil, audio: audio))
        return out
    }

    private static func size(_ url: URL) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: url.path))?[.size] as? Int) ?? 0
    }

    /// Joins each rendition folder's init segment and media segments into one fragmented MP4, then
    /// copies the packets of the streams of the kinds wanted from each, interleaved by time, into a
    /// fast-start MP4.
    private static func remux(_ folders: [(String, Set<MediaKind>)], package: URL, to output: URL) throws {
        var joined: [URL] = []
        defer { joined.forEach { try? FileManager.default.removeItem(at: $0) } }
        /// One joined folder: its demuxer and the output stream of each input stream copied.
        var inputs: [(demuxer: Demuxer, map: [Int: Int])] = []
        let muxer = try Muxer(path: output.path, format: output.pathExtension == "m4a" ? "ipod" : "mp4")
        for (r, kinds) in folders {
            let dir = package.appendingPathComponent(r)
            let playlist = try MediaPlaylist(contentsOf: dir.appendingPathComponent("index.m3u8"))
            let tmp = package.appendingPathComponent(".join-\(r)-\(joined.count).mp4")
            let joinedFile = try OutputFile(creating: tmp)
            for file in (playlist.mapURI.map { [$0] } ?? []) + playlist.segments.map(\.uri) {
                try joinedFile.append(Data(contentsOf: dir.appendingPathComponent(file)))
            }
            try joinedFile.close()
            joined.append(tmp)
            var options = DemuxerOptions()
            options.allowedFormats = ["mov"]
            let d = try Demuxer(path: "file:" + tmp.path, options: options)
            var map: [Int: Int] = [:]
            for kind in [MediaKind.video, .audio] where kinds.contains(kind) {
                guard let s = d.streams.first(where: { $0.kind == kind }) else {
                    throw CoursePackError(.internal, path: dir.path, "rendition has no \(kind) stream to download")
                }
                map[s.index] = try muxer.addStream(copying: s.index, of: d)
            }
            inputs.append((d, map))
        }
        try muxer.writeHeader(options: ["movflags": "+faststart"])
        // Merge the inputs by decoding time so the file interleaves audio and video.
        var heads: [Packet?] = try inputs.map { try next($0.demuxer, streams: $0.map) }
        while true {
            var pick: Int?
            for (i, p) in heads.enumerated() where p != nil {
                if pick == nil || order(p!) < order(heads[pick!]!) { pick = i }
            }
            guard let i = pick, let packet = heads[i], let out = inputs[i].map[packet.streamIndex] else { break }
            try muxer.write(packet, stream: out)
            heads[i] = try next(inputs[i].demuxer, streams: inputs[i].map)
        }
        try muxer.finish()
    }

    /// Decoding time in seconds: the order muxers want.
    private static func order(_ p: Packet) -> Double {
        (p.dts ?? p.pts).map { p.timeBase.seconds($0) } ?? -.infinity
    }

    private static func next(_ d: Demuxer, streams: [Int: Int]) throws -> Packet? {
        while let p = try d.read() {
            if streams[p.streamIndex] != nil { return p }
        }
        return nil
    }
}
