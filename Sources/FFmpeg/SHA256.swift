import CFFmpeg
import Foundation

/// SHA-256 from libavutil (`av_sha`), for content hashes of sources and presets.
/// Not `Sendable`: one hashing context, used from one thread.
public final class SHA256 {
    private let context: OpaquePointer

    public init() {
        context = av_sha_alloc()!
        av_sha_init(context, 256)
    }

    deinit { av_free(UnsafeMutableRawPointer(context)) }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        av_sha_update(context, base.assumingMemoryBound(to: UInt8.self), bytes.count)
    }

    public func update(_ data: Data) { data.withUnsafeBytes { update($0) } }

    /// The digest as 64 lowercase hex digits; the context must not be used afterwards.
    public func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        av_sha_final(context, &digest)
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    public static func hex(_ data: Data) -> String {
        let h = SHA256()
        h.update(data)
        return h.finish()
    }
}
