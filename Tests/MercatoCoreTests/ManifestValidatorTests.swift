import Foundation
import MercatoCore
import MercatoHooks
import MercatoTestSupport
import Testing

/// A valid manifest to break one field at a time.
func validManifest() -> [String: JSONValue] {
    [
        "key": .string("acme-notify"),
        "name": .string("Acme Notify"),
        "version": .string("1.0.0"),
        "description": .string("Posts alerts."),
        "developer": .object(["name": .string("Acme"), "url": .string("https://acme.example"), "email": .string("dev@acme.example")]),
        "categories": .array([.string("communication")]),
        "plan": .string("free"),
        "scopes": .array([.string("kv:write"), .string("install:read")]),
        "events": .array([.string("app.installed"), .string("task.created")]),
        "webhook_url": .string("https://hooks.acme.example/mercato"),
        "command_signing": .object(["type": .string("hmac")]),
        "oauth": .object(["provider": .string("slack"), "scopes": .array([.string("chat:write")])]),
        "config": .array([
            .object(["key": .string("channel"), "label": .string("Channel"), "type": .string("string"), "required": .bool(true), "pattern": .string("^#[a-z]+$")]),
            .object(["key": .string("mode"), "label": .string("Mode"), "type": .string("enum"), "options": .array([.string("a"), .string("b")]), "default": .string("a")]),
            .object(["key": .string("token"), "label": .string("Token"), "type": .string("secret")]),
            .object(["key": .string("limit"), "label": .string("Limit"), "type": .string("number"), "default": .number(10)]),
        ]),
    ]
}

@Suite("Manifest validation")
struct ManifestValidatorTests {
    let validator = ManifestValidator(capabilities: try! TestPlugins.capabilities(), providers: ["slack", "github"])

    func problems(_ edit: (inout [String: JSONValue]) -> Void) -> [APIError.FieldProblem] {
        var m = validManifest()
        edit(&m)
        switch validator.validate(.object(m)) {
        case .success: return []
        case .failure(let p): return p.errors
        }
    }

    @Test func theValidManifestPasses() throws {
        let manifest = try validator.validate(.object(validManifest())).get()
        #expect(manifest.key == "acme-notify")
        #expect(manifest.config.count == 4)
        #expect(manifest.config[2].isSecret)
        #expect(manifest.commandSigning.type == "hmac")
    }

    @Test func fiveMistakesAreAllReportedAtOnce() {
        let errors = problems { m in
            m["colour"] = .string("blue")                       // unknown field
            m["key"] = .string("Bad Key")                        // pattern
            m["version"] = .string("1.0")                        // not semver
            m["scopes"] = .array([.string("kv:write"), .string("root:all")])   // unknown scope
            m["webhook_url"] = .string("http://hooks.acme.example/x")          // http outside loopback
        }
        #expect(Set(errors.map(\.field)) == ["colour", "key", "version", "scopes[1]", "webhook_url"])
    }

    @Test(arguments: [
        ("events", JSONValue.array([.string("app.exploded")]), "events[0]"),
        ("plan", .string("gold"), "plan"),
        ("categories", .array([.string("Not A Slug")]), "categories[0]"),
        ("icon_url", .string("http://x.example/i.png"), "icon_url"),
        ("developer", .object(["name": .string("A"), "phone": .string("1")]), "developer.phone"),
        ("developer", .object(["name": .string("A"), "email": .string("nope")]), "developer.email"),
        ("command_signing", .object(["type": .string("rsa")]), "command_signing.type"),
        ("command_signing", .object(["type": .string("ed25519"), "public_key": .string("whpk_c2hvcnQ=")]), "command_signing.public_key"),
        ("oauth", .object(["provider": .string("myspace"), "scopes": .array([])]), "oauth.provider"),
        ("name", .string("   "), "name"),
        ("name", .number(3), "name"),
        ("scopes", .array([.string("kv:read"), .string("kv:read")]), "scopes[1]"),
    ])
    func eachTopLevelRuleNamesItsField(field: String, value: JSONValue, expected: String) {
        let errors = problems { $0[field] = value }
        #expect(errors.map(\.field).contains(expected), "\(errors)")
    }

    @Test(arguments: [
        (JSONValue.object(["key": .string("x"), "label": .string("X"), "type": .string("colour")]), "config[4].type"),
        (.object(["key": .string("e"), "label": .string("E"), "type": .string("enum")]), "config[4].options"),
        (.object(["key": .string("e"), "label": .string("E"), "type": .string("enum"), "options": .array([.string("a")]), "default": .string("z")]), "config[4].default"),
        (.object(["key": .string("channel"), "label": .string("Dup"), "type": .string("string")]), "config[4].key"),
        (.object(["key": .string("s"), "label": .string("S"), "type": .string("secret"), "default": .string("x")]), "config[4].default"),
        (.object(["key": .string("p"), "label": .string("P"), "type": .string("string"), "pattern": .string("([a-")]), "config[4].pattern"),
        (.object(["key": .string("n"), "label": .string("N"), "type": .string("number"), "default": .string("ten")]), "config[4].default"),
        (.object(["key": .string("b"), "label": .string("B"), "type": .string("boolean"), "options": .array([.string("y")])]), "config[4].options"),
        (.object(["key": .string("c"), "label": .string("C"), "type": .string("string"), "placeholder": .string("x")]), "config[4].placeholder"),
        (.object(["key": .string("Bad-Key"), "label": .string("K"), "type": .string("string")]), "config[4].key"),
        (.object(["key": .string("r"), "label": .string("R"), "type": .string("string"), "required": .string("yes")]), "config[4].required"),
    ])
    func configFieldRules(field: JSONValue, expected: String) {
        let errors = problems { m in
            guard case .array(var fields) = m["config"]! else { return }
            fields.append(field)
            m["config"] = .array(fields)
        }
        #expect(errors.map(\.field).contains(expected), "\(errors)")
    }

    @Test func webhookRules() {
        #expect(problems { $0["webhook_url"] = .string("http://127.0.0.1:9000/hook") }.isEmpty)
        #expect(problems { $0["webhook_url"] = .string("http://localhost/hook") }.isEmpty)
        #expect(problems { $0["webhook_url"] = nil }.map(\.field) == ["webhook_url"])   // events need a URL
        #expect(problems { $0["webhook_url"] = nil; $0["events"] = nil }.isEmpty)
    }

    @Test func ed25519NeedsA32BytePublicKey() {
        let key = "whpk_" + Data(repeating: 7, count: 32).base64EncodedString()
        #expect(problems { $0["command_signing"] = .object(["type": .string("ed25519"), "public_key": .string(key)]) }.isEmpty)
        #expect(!problems { $0["command_signing"] = .object(["type": .string("ed25519")]) }.isEmpty)
        #expect(!problems { $0["command_signing"] = .object(["type": .string("hmac"), "public_key": .string(key)]) }.isEmpty)
    }

    @Test func yamlAndJSONReadTheSame() throws {
        let yaml = """
        key: yaml-app
        name: YAML App
        version: 2.1.0-beta.1
        description: Reads the same as JSON.
        developer: {name: Acme}
        scopes: [kv:read]
        config:
          - {key: n, label: N, type: number, default: 3}
        """
        let fromYAML = try ManifestDocument.parse(Data(yaml.utf8), format: .yaml)
        let manifest = try validator.validate(fromYAML).get()
        #expect(manifest.version == "2.1.0-beta.1")
        #expect(manifest.config.first?.default == .number(3))
        // YAML reads `version: 1.0` as a number: reported, not coerced.
        let numeric = try ManifestDocument.parse(Data(yaml.replacingOccurrences(of: "2.1.0-beta.1", with: "1.0").utf8), format: .yaml)
        guard case .failure(let p) = validator.validate(numeric) else { Issue.record("accepted a numeric version"); return }
        #expect(p.errors.map(\.field) == ["version"])
        #expect(throws: APIError.self) { try ManifestDocument.parse(Data("key: [unclosed".utf8), format: .yaml) }
        #expect(throws: APIError.self) { try ManifestDocument.parse(Data("{\"key\": ".utf8), format: .json) }
    }

    @Test func theSeedCatalogIsValid() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let providerDir = root.appendingPathComponent("catalog/providers")
        let providerFiles = try FileManager.default.contentsOfDirectory(atPath: providerDir.path).filter { $0.hasSuffix(".yaml") }
        #expect(providerFiles.count >= 8)
        var providers = Set<String>()
        for file in providerFiles {
            let doc = try ManifestDocument.parse(try Data(contentsOf: providerDir.appendingPathComponent(file)), format: .yaml)
            let definition = try ProviderDefinition.validate(doc).get()
            providers.insert(definition.key)
        }
        let catalogValidator = ManifestValidator(capabilities: try TestPlugins.capabilities(), providers: providers)
        let appDir = root.appendingPathComponent("catalog/apps")
        let appFiles = try FileManager.default.contentsOfDirectory(atPath: appDir.path).filter { $0.hasSuffix(".yaml") }
        #expect(appFiles.count >= 10)
        for file in appFiles {
            let doc = try ManifestDocument.parse(try Data(contentsOf: appDir.appendingPathComponent(file)), format: .yaml)
            if case .failure(let p) = catalogValidator.validate(doc) { Issue.record("\(file): \(p.errors)") }
        }
    }
}

@Suite("Semantic versions")
struct SemverTests {
    @Test func precedenceFollowsTheSpecification() {
        let ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"]
        let parsed = ordered.map { Semver($0)! }
        for (a, b) in zip(parsed, parsed.dropFirst()) { #expect(a < b, "\(a) < \(b)") }
        #expect(Semver("1.0.0+build.1")! == Semver("1.0.0+build.2")!)
    }

    @Test(arguments: ["1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1..0", "", "1.0.0-a..b", "1.0.0+", "١.0.0"])
    func rejectsWhatIsNotSemver(text: String) {
        #expect(Semver(text) == nil)
    }
}

@Suite("Manifest validation: inbound")
struct InboundManifestValidatorTests {
    let validator = ManifestValidator(capabilities: try! TestPlugins.capabilities(), providers: ["slack", "github"])

    func result(_ inbound: JSONValue) -> Result<AppManifest, ManifestProblems> {
        var m = validManifest()
        m["inbound"] = inbound
        return validator.validate(.object(m))
    }

    func fields(_ inbound: JSONValue) -> Set<String> {
        switch result(inbound) {
        case .success: return []
        case .failure(let p): return Set(p.errors.map(\.field))
        }
    }

    @Test func aKnownProviderWithASecretFieldPasses() throws {
        let manifest = try result(.array([.object(["provider": .string("stripe"), "secret_field": .string("token")]),
                                          .object(["provider": .string("standard-webhooks"), "secret_field": .string("token")])])).get()
        #expect(manifest.inbound == [.init(provider: "stripe", secretField: "token"), .init(provider: "standard-webhooks", secretField: "token")])
        // It survives the stored JSON form.
        let decoded = try JSONDecoder().decode(AppManifest.self, from: JSONEncoder().encode(manifest))
        #expect(decoded.inbound == manifest.inbound)
    }

    @Test func noInboundIsNil() throws {
        #expect(try validator.validate(.object(validManifest())).get().inbound == nil)
    }

    @Test func anUnknownProviderIsNamed() {
        #expect(fields(.array([.object(["provider": .string("paypal"), "secret_field": .string("token")])])) == ["inbound[0].provider"])
    }

    @Test func theSecretFieldMustBeASecretConfigField() {
        #expect(fields(.array([.object(["provider": .string("github"), "secret_field": .string("channel")])])) == ["inbound[0].secret_field"])
        #expect(fields(.array([.object(["provider": .string("github"), "secret_field": .string("nope")])])) == ["inbound[0].secret_field"])
        #expect(fields(.array([.object(["provider": .string("github")])])) == ["inbound[0].secret_field"])
    }

    @Test func shapeMistakesAreNamed() {
        #expect(fields(.string("stripe")) == ["inbound"])
        #expect(fields(.array([.object(["provider": .string("slack"), "secret_field": .string("token"), "extra": .bool(true)])])) == ["inbound[0].extra"])
        #expect(fields(.array([.object(["provider": .string("slack"), "secret_field": .string("token")]),
                               .object(["provider": .string("slack"), "secret_field": .string("token")])])) == ["inbound[1].provider"])
    }
}
