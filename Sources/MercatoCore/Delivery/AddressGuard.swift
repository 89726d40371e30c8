import Foundation
#if canImport(Glibc)
import Glibc
#endif
import NIOPosix

/// Decides where a webhook may be delivered: refuses URLs whose host resolves to an address a
/// delivery must never reach (loopback, private, link-local with cloud metadata at
/// 169.254.169.254, carrier-grade NAT, unique-local, multicast and unspecified, in IPv4 and
/// IPv6, IPv4-mapped too), and names the one address the delivery must connect to.
///
/// Every resolved address must pass, so a name with one public and one private address is
/// refused. The delivery then connects to the address that was checked (``DeliveryClients``
/// pins it), never to a second lookup's answer: a DNS server that answers a public address to
/// the check and a private one to the connection (DNS rebinding) gains nothing. Redirects are
/// not followed by the delivery client, so they cannot lead around it either.
public struct AddressGuard: Sendable {
    /// `MERCATO_ALLOW_PRIVATE_WEBHOOKS=1`: allow them all (tests, private deployments). The
    /// address is still resolved once and pinned.
    public var allowPrivate: Bool
    let resolver: @Sendable (String) -> [[UInt8]]

    /// `resolver` answers a host's addresses as raw bytes (4 or 16); the default asks the system.
    public init(allowPrivate: Bool, resolver: @escaping @Sendable (String) -> [[UInt8]] = AddressGuard.systemResolve) {
        self.allowPrivate = allowPrivate
        self.resolver = resolver
    }

    /// Where a URL's deliveries go.
    public enum Verdict: Sendable, Equatable {
        /// Deliver, connecting to `address` (a numeric IPv4 or IPv6 address) for `host`.
        case deliver(host: String, address: String)
        /// Never deliverable: a permanent refusal, with why (a sentence without the addresses).
        case refused(String)
        /// The host does not resolve now; a later attempt may succeed.
        case unresolved(String)
    }

    /// The verdict for `url`. Resolution runs on NIO's blocking-I/O pool, not on a task thread.
    public func verdict(for url: String) async -> Verdict {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http",
              let rawHost = parsed.host, !rawHost.isEmpty else { return .refused("the webhook URL is not an absolute http(s) URL") }
        let host = rawHost.trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
        let resolver = self.resolver
        let addresses = (try? await NIOThreadPool.singleton.runIfActive { resolver(host) }) ?? []
        return judge(host: host, addresses: addresses)
    }

    func judge(host: String, addresses: [[UInt8]]) -> Verdict {
        guard let first = addresses.first, let address = Self.text(first) else { return .unresolved("the webhook host does not resolve") }
        if !allowPrivate && addresses.contains(where: Self.isForbidden) {
            return .refused("the webhook host resolves to a private, loopback, link-local or metadata address")
        }
        return .deliver(host: host, address: address)
    }

    /// The addresses `host` resolves to, as raw bytes (4 or 16), from the system's resolver.
    @Sendable public static func systemResolve(_ host: String) -> [[UInt8]] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else { return [] }
        defer { freeaddrinfo(first) }
        var out: [[UInt8]] = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let current = node {
            if let sa = current.pointee.ai_addr {
                switch Int32(sa.pointee.sa_family) {
                case AF_INET:
                    sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                        withUnsafeBytes(of: sin.pointee.sin_addr) { out.append(Array($0)) }
                    }
                case AF_INET6:
                    sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                        withUnsafeBytes(of: sin6.pointee.sin6_addr) { out.append(Array($0)) }
                    }
                default: break
                }
            }
            node = current.pointee.ai_next
        }
        return out
    }

    /// The numeric text of a 4- or 16-byte address.
    static func text(_ address: [UInt8]) -> String? {
        let family = address.count == 4 ? AF_INET : address.count == 16 ? AF_INET6 : -1
        guard family >= 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = address.withUnsafeBytes { bytes in inet_ntop(family, bytes.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard written != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `true` for an address no delivery may reach.
    static func isForbidden(_ a: [UInt8]) -> Bool {
        if a.count == 4 { return isForbiddenV4(a) }
        guard a.count == 16 else { return true }
        if a[0 ..< 10].allSatisfy({ $0 == 0 }) && a[10] == 0xff && a[11] == 0xff { return isForbiddenV4(Array(a[12 ..< 16])) }  // ::ffff:a.b.c.d
        if a[0 ..< 12].allSatisfy({ $0 == 0 }) { return true }             // ::, ::1 and IPv4-compatible
        if a[0] == 0xfe && (a[1] & 0xc0) == 0x80 { return true }          // fe80::/10 link-local
        if (a[0] & 0xfe) == 0xfc { return true }                           // fc00::/7 unique local
        if a[0] == 0xff { return true }                                    // multicast
        if a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8 { return true }  // documentation
        if a[0] == 0x00 && a[1] == 0x64 && a[2] == 0xff && a[3] == 0x9b { return isForbiddenV4(Array(a[12 ..< 16])) }  // NAT64
        return false
    }

    static func isForbiddenV4(_ a: [UInt8]) -> Bool {
        switch (a[0], a[1]) {
        case (0, _), (10, _), (127, _): return true                        // this network, private, loopback
        case (100, 64 ... 127): return true                                // carrier-grade NAT
        case (169, 254): return true                                       // link-local, cloud metadata
        case (172, 16 ... 31), (192, 168): return true                     // private
        case (192, 0) where a[2] == 0 || a[2] == 2: return true            // IETF protocol, documentation
        case (198, 18 ... 19): return true                                 // benchmarking
        case (198, 51) where a[2] == 100, (203, 0) where a[2] == 113: return true  // documentation
        case (224 ... 255, _): return true                                 // multicast, reserved, broadcast
        default: return false
        }
    }
}
