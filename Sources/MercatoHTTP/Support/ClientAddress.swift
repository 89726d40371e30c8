#if canImport(Glibc)
import Glibc
#endif
public import NIOCore

/// The key under which a caller's refusals before authentication are counted: its IPv4
/// address, or the /64 of its IPv6 address (one host usually holds a whole /64), with
/// IPv4-mapped IPv6 addresses counted as the IPv4 address they carry.
public enum ClientAddress {
    public static func key(_ address: SocketAddress?) -> String {
        switch address {
        case .v4:
            return address?.ipAddress ?? "unknown"
        case .v6:
            var bytes = [UInt8](repeating: 0, count: 16)
            guard let text = address?.ipAddress, inet_pton(AF_INET6, text, &bytes) == 1 else { return address?.ipAddress ?? "unknown" }
            if bytes[0 ..< 10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xff && bytes[11] == 0xff {
                return bytes[12 ..< 16].map(String.init).joined(separator: ".")
            }
            return stride(from: 0, to: 8, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":") + "::/64"
        case .unixDomainSocket, .none:
            return "local"
        }
    }
}
