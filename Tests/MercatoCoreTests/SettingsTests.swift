import MercatoCore
import Testing

@Suite("Settings from the environment")
struct SettingsTests {
    @Test func refusedCommandLimitsHaveDefaultsAndSayWhatIsWrong() throws {
        let defaults = try Settings(environment: ["MERCATO_DATA_DIR": "/tmp/mercato-settings-test"])
        #expect(defaults.refusedCommandsBurst == 100 && defaults.refusedCommandsPerSecond == 10)
        let raised = try Settings(environment: ["MERCATO_DATA_DIR": "/tmp/mercato-settings-test",
                                                "MERCATO_REFUSED_COMMANDS_BURST": "5000", "MERCATO_REFUSED_COMMANDS_PER_SECOND": "250"])
        #expect(raised.refusedCommandsBurst == 5000 && raised.refusedCommandsPerSecond == 250)
        for (name, bad) in [("MERCATO_REFUSED_COMMANDS_BURST", "0"), ("MERCATO_REFUSED_COMMANDS_PER_SECOND", "ten")] {
            do {
                _ = try Settings(environment: ["MERCATO_DATA_DIR": "/tmp/mercato-settings-test", name: bad])
                Issue.record("\(name)=\(bad) was accepted")
            } catch let error as SettingsError {
                #expect(error.description == "\(name) must be a whole number from 1 to 1000000, not \(bad)")
            }
        }
    }

    @Test func frameAncestorsAreOriginsOnly() throws {
        let base = ["MERCATO_DATA_DIR": "/tmp/mercato-settings-test"]
        #expect(try Settings(environment: base).frameAncestors.isEmpty)
        let listed = try Settings(environment: base.merging(["MERCATO_FRAME_ANCESTORS": "https://app.example.com/ http://localhost:3000"]) { a, _ in a })
        #expect(listed.frameAncestors == ["https://app.example.com", "http://localhost:3000"])
        // Anything that could add a CSP directive or a source keyword is refused.
        for bad in ["https://a.example; script-src *", "'unsafe-inline'", "*", "https://a.example/path", "javascript:alert(1)"] {
            #expect(throws: SettingsError.self) { try Settings(environment: base.merging(["MERCATO_FRAME_ANCESTORS": bad]) { a, _ in a }) }
        }
    }
}
