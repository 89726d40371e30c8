import Foundation
@testable import MercatoCrypto
import Testing

@Suite("Vault: seal and open with bound additional data")
struct VaultTests {
    let context = SealContext(org: "org_a", owner: "ins_1", purpose: "config.api_key")

    @Test func roundTripsAndUsesAFreshNonceEachTime() throws {
        let vault = Vault(keyring: .generate())
        let a = try vault.seal("s3cret-value", context: context)
        let b = try vault.seal("s3cret-value", context: context)
        #expect(a != b)
        #expect(try vault.openString(a, context: context) == "s3cret-value")
        #expect(try vault.openString(b, context: context) == "s3cret-value")
        #expect(!String(decoding: a, as: UTF8.self).contains("s3cret"))
    }

    /// The additional data every stored value was sealed with: changing a byte of it makes every
    /// sealed value in every database unreadable, so its layout is pinned here byte for byte.
    @Test func theAdditionalDataLayoutIsFixed() {
        var expected = Array("mercato.vault".utf8) + [0x4D, 0x01] + [0, 0, 1, 2]
        for field in ["org_a", "ins_1", "config.api_key"] {
            expected += [0, 0, 0, UInt8(field.utf8.count)] + Array(field.utf8)
        }
        #expect(Vault.additionalData(version: 258, context: context) == expected)
        let long = SealContext(org: String(repeating: "o", count: 300), owner: "", purpose: "p")
        let ad = Vault.additionalData(version: 1, context: long)
        #expect(Array(ad[19 ..< 23]) == [0, 0, 1, 44])
        #expect(Array(ad[323 ..< 327]) == [0, 0, 0, 0])
        #expect(ad.count == 13 + 2 + 4 + 4 + 300 + 4 + 4 + 1)
    }

    @Test func everyTamperedByteFailsClosed() throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal("the plaintext", context: context)
        for index in sealed.indices {
            var tampered = sealed
            tampered[index] ^= 0x01
            #expect(throws: VaultError.self, "byte \(index)") { try vault.open(tampered, context: context) }
        }
        #expect(throws: VaultError.malformed) { try vault.open(Array(sealed.prefix(20)), context: context) }
        #expect(throws: VaultError.authenticationFailed) { try vault.open(Array(sealed.dropLast()), context: context) }
    }

    @Test(arguments: [
        SealContext(org: "org_b", owner: "ins_1", purpose: "config.api_key"),
        SealContext(org: "org_a", owner: "ins_2", purpose: "config.api_key"),
        SealContext(org: "org_a", owner: "ins_1", purpose: "config.other"),
    ])
    func aValueMovedToAnotherOrgRecordOrPurposeDoesNotOpen(other: SealContext) throws {
        let vault = Vault(keyring: .generate())
        let sealed = try vault.seal("bound", context: context)
        #expect(throws: VaultError.authenticationFailed) { try vault.open(sealed, context: other) }
    }

    @Test func anotherMasterKeyDoesNotOpen() throws {
        let sealed = try Vault(keyring: .generate()).seal("x", context: context)
        #expect(throws: VaultError.authenticationFailed) { try Vault(keyring: .generate()).open(sealed, context: context) }
    }

    @Test func wrongOrUnknownKeyVersionFailsClosed() throws {
        let ring = Keyring.generate().addingVersion()          // versions 1 and 2, current 2
        let vault = Vault(keyring: ring)
        var sealed = try vault.seal("v2 value", context: context)
        #expect(Vault.keyVersion(of: sealed) == 2)
        sealed[5] = 1                                          // claim version 1: other key, other AD
        #expect(throws: VaultError.authenticationFailed) { try vault.open(sealed, context: context) }
        sealed[5] = 9                                          // a version the ring lacks
        #expect(throws: VaultError.unknownKeyVersion(9)) { try vault.open(sealed, context: context) }
    }

    @Test func rotationKeepsOldValuesOpenUntilTheVersionIsRetired() throws {
        let v1 = Keyring.generate()
        let old = try Vault(keyring: v1).seal("old", context: context)
        let v2 = v1.addingVersion()
        let rotated = Vault(keyring: v2)
        #expect(try rotated.openString(old, context: context) == "old")
        let fresh = try rotated.seal("new", context: context)
        #expect(Vault.keyVersion(of: fresh) == 2)
        let retired = Vault(keyring: try v2.removingVersion(1))
        #expect(throws: VaultError.unknownKeyVersion(1)) { try retired.open(old, context: context) }
        #expect(try retired.openString(fresh, context: context) == "new")
        #expect(throws: KeyringError.retiringCurrent(2)) { try v2.removingVersion(2) }
    }

    @Test func aVaultReloadsItsSourceWhenItMeetsANewVersion() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("vault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("master.key")
        let v1 = Keyring.generate()
        try v1.write(to: file)
        let server = Vault(keyring: try Keyring(contentsOf: file), reload: { try Keyring(contentsOf: file) })
        // Another process rotates and seals under version 2.
        let v2 = try Keyring(contentsOf: file).addingVersion()
        try v2.write(to: file)
        let sealedByOther = try Vault(keyring: v2).seal("from the rotator", context: context)
        #expect(server.currentKeyVersion == 1)
        #expect(try server.openString(sealedByOther, context: context) == "from the rotator")
        #expect(server.currentKeyVersion == 2)
    }
}

@Suite("Keyring text forms")
struct KeyringTests {
    @Test func fileIsWrittenWithMode0600AndReadsBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("master.key")
        let ring = Keyring.generate().addingVersion()
        try ring.write(to: file)
        let mode = try FileManager.default.attributesOfItem(atPath: file.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let back = try Keyring(contentsOf: file)
        #expect(back.current == 2)
        #expect(back.keys[1]!.exportBytes() == ring.keys[1]!.exportBytes())
    }

    @Test func environmentValueForms() throws {
        let key = Data(SecureRandom.bytes(32)).base64EncodedString()
        #expect(try Keyring(environmentValue: key).current == 1)
        let two = try Keyring(environmentValue: "1:\(key),3:\(Data(SecureRandom.bytes(32)).base64EncodedString())")
        #expect(two.current == 3)
        #expect(try Keyring(environmentValue: two.environmentValue).keys.count == 2)
        #expect(throws: KeyringError.badKey(version: 1)) { try Keyring(environmentValue: "c2hvcnQ=") }
        #expect(throws: KeyringError.self) { try Keyring(environmentValue: "\(key),\(key)") }
        #expect(throws: KeyringError.self) { try Keyring(environmentValue: "0:\(key)") }
        #expect(throws: KeyringError.empty) { try Keyring(environmentValue: "") }
    }
}

@Suite("Tokens and comparisons")
struct TokenTests {
    @Test func tokensAreRandomPrefixedAndDigestedDeterministically() {
        let a = APITokenText.generate()
        let b = APITokenText.generate()
        #expect(a != b)
        #expect(a.hasPrefix("mct_") && a.count == 4 + 43)
        #expect(APITokenText.digest(a) == APITokenText.digest(a))
        #expect(APITokenText.digest(a) != APITokenText.digest(b))
        #expect(!APITokenText.digest(a).contains(a))
    }

    @Test func constantTimeEquality() {
        #expect(ConstantTime.equals([1, 2, 3] as [UInt8], [1, 2, 3] as [UInt8]))
        #expect(!ConstantTime.equals([1, 2, 3] as [UInt8], [1, 2, 4] as [UInt8]))
        #expect(!ConstantTime.equals([1, 2, 3] as [UInt8], [1, 2] as [UInt8]))
        #expect(ConstantTime.equals([] as [UInt8], [] as [UInt8]))
    }
}
