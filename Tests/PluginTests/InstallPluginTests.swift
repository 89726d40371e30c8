import InstallPlugin
import MercatoHooks
import MercatoHooksTesting
import Testing

@Suite struct InstallPluginTests {
    let host = FakeHost()

    @Test func pingAnswersPong() async throws {
        let install = host.install()
        #expect(try await InstallPlugin().handle(host.command("ping", [:], install), host.context(install)) == .object(["pong": .bool(true)]))
    }

    @Test func infoDescribesTheInstall() async throws {
        let install = host.install(app: "acme", scopes: ["install:read"])
        let info = try await InstallPlugin().handle(host.command("install.info", [:], install), host.context(install))
        #expect(info["install_id"] == .string(install.installID))
        #expect(info["app"] == .string("acme"))
        #expect(info["scopes"] == .array([.string("install:read")]))
    }

    @Test func configComesFromTheHostInClear() async throws {
        let install = host.install(config: ["api_key": .string("s3cret"), "region": .string("eu")])
        let answer = try await InstallPlugin().handle(host.command("install.config", [:], install), host.context(install))
        #expect(answer["config"] == .object(["api_key": .string("s3cret"), "region": .string("eu")]))
    }

    @Test func anotherCommandIsUnknown() async throws {
        let install = host.install()
        await #expect(throws: CommandError.unknownCommand("kv.get")) {
            try await InstallPlugin().handle(host.command("kv.get", [:], install), host.context(install))
        }
    }
}
