import Crypto
public import Foundation

/// SHA-256 and HMAC-SHA256 (swift-crypto), as lowercase hex: build keys, preset fingerprints, source
/// hashes and webhook signatures.
public enum Hashing {
    public static func sha256Hex(_ data: Data) -> String {
        hex(Crypto.SHA256.hash(data: data))
    }

    public static func hmacSHA256Hex(key: String, data: Data) -> String {
        hex(HMAC<Crypto.SHA256>.authenticationCode(for: data, using: SymmetricKey(data: Data(key.utf8))))
    }

    /// SHA-256 of data given in pieces (a source file read 1 MB at a time).
    public struct SHA256Stream {
        private var hasher = Crypto.SHA256()
        public init() {}
        public mutating func update(_ data: Data) { hasher.update(data: data) }
        public func finish() -> String { Hashing.hex(hasher.finalize()) }
    }

    static func hex<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
