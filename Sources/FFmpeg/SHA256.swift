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

/// HMAC-SHA256 from libavutil (`av_hmac`), for signing webhook bodies.
public enum HMACSHA256 {
    /// The MAC of `data` under `key`, as 64 lowercase hex digits.
    public static func hex(key: [UInt8], data: Data) -> String {
        guard let ctx = av_hmac_alloc(AV_HMAC_SHA256) else { fatalError("av_hmac_alloc: out of memory") }
        defer { av_hmac_free(ctx) }
        var out = [UInt8](repeating: 0, count: 32)
        let n = data.withUnsafeBytes { d in
            key.withUnsafeBufferPointer { k in
                av_hmac_calc(ctx, d.bindMemory(to: UInt8.self).baseAddress, UInt32(d.count), k.baseAddress, UInt32(k.count), &out, 32)
            }
        }
        precondition(n == 32, "av_hmac_calc wrote \(n) bytes")
        return out.map { String(format: "%02x", $0) }.joined()
    }
}
