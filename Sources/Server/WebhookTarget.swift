import Foundation
import LectureModel

/// Where a webhook may go. A callback URL comes from whoever submits a job, so the server must not
/// become their way into its own network: hosts that resolve to loopback, link-local (cloud metadata
/// at 169.254.169.254), private, shared (100.64/10), multicast, reserved or unspecified addresses are
/// refused, after DNS resolution and before every delivery, unless the host is one the operator lists
/// in `webhookAllowedHosts`. Redirects are never followed (a 3xx is a failed delivery).
struct WebhookTarget {
    let allowed: Set<String>

    init(allowedHosts: [String]) { allowed = Set(allowedHosts.map { $0.lowercased() }) }

    struct Refused: Error, CustomStringConvertible { var description: String }

    /// Resolves the URL's host and throws Refused naming the first forbidden address.
    func check(_ url: URL) throws {
        guard let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https" else {
            throw Refused(description: "callback URLs must be http or https")
        }
        guard let rawHost = url.host, !rawHost.isEmpty else { throw Refused(description: "the callback URL has no host") }
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if allowed.contains(host) || allowed.contains(rawHost.lowercased()) { return }
        let addresses = try Self.resolve(host)
        guard !addresses.isEmpty else { throw Refused(description: "\(host) does not resolve") }
        for a in addresses {
            if let why = Self.forbidden(a) { throw Refused(description: "\(host) resolves to \(a.text), \(why); refused (allow it with webhookAllowedHosts)") }
        }
    }

    /// An address as bytes (4 or 16) with its text.
    struct Address { var bytes: [UInt8]; var text: String }

    static func resolve(_ host: String) throws -> [Address] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, nil, &hints, &list)
        guard rc == 0 else { throw Refused(description: "\(host) does not resolve: \(String(cString: gai_strerror(rc)))") }
        defer { freeaddrinfo(list) }
        var out: [Address] = []
        var p = list
        while let info = p {
            if let sa = info.pointee.ai_addr {
                if info.pointee.ai_family == AF_INET {
                    let v4 = sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr.s_addr }
                    let b = withUnsafeBytes(of: v4) { Array($0) }
                    out.append(Address(bytes: b, text: b.map(String.init).joined(separator: ".")))
                } else if info.pointee.ai_family == AF_INET6 {
                    var v6 = sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
                    let b = withUnsafeBytes(of: &v6) { Array($0) }
                    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                    inet_ntop(AF_INET6, &v6, &text, socklen_t(text.count))
                    out.append(Address(bytes: b, text: String(cString: text)))
                }
            }
            p = info.pointee.ai_next
        }
        return out
    }

    /// Why an address may not be a webhook target, or nil when it may.
    static func forbidden(_ a: Address) -> String? {
        let b = a.bytes
        if b.count == 4 { return forbidden4(b) }
        guard b.count == 16 else { return "not an internet address" }
        if b.allSatisfy({ $0 == 0 }) { return "the unspecified address" }
        if b[0..<15].allSatisfy({ $0 == 0 }) && b[15] == 1 { return "loopback" }
        // IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::a.b.c.d) carry an IPv4 address.
        if b[0..<10].allSatisfy({ $0 == 0 }) && ((b[10] == 0xff && b[11] == 0xff) || (b[10] == 0 && b[11] == 0)) {
            return forbidden4(Array(b[12..<16]))
        }
        if b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b { return forbidden4(Array(b[12..<16])) }
        if b[0] == 0xfe && (b[1] & 0xc0) == 0x80 { return "link-local" }
        if b[0] == 0xfe && (b[1] & 0xc0) == 0xc0 { return "site-local" }
        if (b[0] & 0xfe) == 0xfc { return "private (unique local)" }
        if b[0] == 0xff { return "multicast" }
        if b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8 { return "reserved for documentation" }
        return nil
    }

    static func forbidden4(_ b: [UInt8]) -> String? {
        switch (b[0], b[1]) {
        case (0, _): return "the unspecified network"
        case (10, _): return "private"
        case (100, 64...127): return "shared address space"
        case (127, _): return "loopback"
        case (169, 254): return "link-local"
        case (172, 16...31): return "private"
        case (192, 168): return "private"
        case (192, 0) where b[2] == 0: return "reserved"
        case (198, 18...19): return "reserved for benchmarking"
        case (224...239, _): return "multicast"
        case (240...255, _): return "reserved"
        default: return nil
        }
    }
}
