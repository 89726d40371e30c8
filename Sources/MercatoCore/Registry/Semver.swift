/// A Semantic Versioning 2.0.0 version, ordered by the specification's precedence rules
/// (build metadata ignored, pre-releases below their release).
public struct Semver: Sendable, Comparable, CustomStringConvertible {
    public let major: Int
    public let minor: Int
    public let patch: Int
    public let prerelease: [String]
    public let build: String?

    /// Parses strict semver (no leading `v`, no leading zeros).
    public init?(_ text: String) {
        guard text.utf8.count <= 128 else { return nil }
        var rest = Substring(text)
        var build: String?
        if let plus = rest.firstIndex(of: "+") {
            let b = rest[rest.index(after: plus)...]
            guard Self.identifiersValid(b, numericStrict: false) else { return nil }
            build = String(b)
            rest = rest[..<plus]
        }
        var prerelease: [String] = []
        if let dash = rest.firstIndex(of: "-") {
            let p = rest[rest.index(after: dash)...]
            guard Self.identifiersValid(p, numericStrict: true) else { return nil }
            prerelease = p.split(separator: ".").map(String.init)
            rest = rest[..<dash]
        }
        let core = rest.split(separator: ".", omittingEmptySubsequences: false)
        guard core.count == 3 else { return nil }
        var numbers: [Int] = []
        for part in core {
            guard !part.isEmpty, part.allSatisfy(\.isASCII), part.allSatisfy(\.isNumber),
                  part == "0" || part.first != "0", let n = Int(part) else { return nil }
            numbers.append(n)
        }
        (major, minor, patch) = (numbers[0], numbers[1], numbers[2])
        self.prerelease = prerelease
        self.build = build
    }

    private static func identifiersValid(_ s: Substring, numericStrict: Bool) -> Bool {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        return !parts.isEmpty && parts.allSatisfy { id in
            guard !id.isEmpty, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) else { return false }
            if numericStrict, id.allSatisfy(\.isNumber), id.count > 1, id.first == "0" { return false }
            return true
        }
    }

    public var description: String {
        var s = "\(major).\(minor).\(patch)"
        if !prerelease.isEmpty { s += "-" + prerelease.joined(separator: ".") }
        if let build { s += "+" + build }
        return s
    }

    public static func == (a: Semver, b: Semver) -> Bool { !(a < b) && !(b < a) }

    public static func < (a: Semver, b: Semver) -> Bool {
        if (a.major, a.minor, a.patch) != (b.major, b.minor, b.patch) {
            return (a.major, a.minor, a.patch) < (b.major, b.minor, b.patch)
        }
        switch (a.prerelease.isEmpty, b.prerelease.isEmpty) {
        case (true, true): return false
        case (false, true): return true
        case (true, false): return false
        case (false, false): break
        }
        for (x, y) in zip(a.prerelease, b.prerelease) where x != y {
            switch (Int(x), Int(y)) {
            case let (i?, j?): return i < j
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return x < y
            }
        }
        return a.prerelease.count < b.prerelease.count
    }
}
