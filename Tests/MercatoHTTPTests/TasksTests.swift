import Foundation
import HTTPTypes
import HummingbirdTesting
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("Tasks plugin through the gateway")
struct TasksTests {
    @Test(arguments: TestEngines.all)
    func createUpdateCompleteListEmitEventsAndDropOnUninstall(engine: StorageEngine) async throws {
        try await withApp(engine, mode: .live, plugins: GatewayTests.plugins) { app in
            let s = try await app.commandSender(scopes: ["tasks:read", "tasks:write"], key: "tasks-app")
            func run(_ command: String, _ args: [String: Any]) async throws -> [String: Any] {
                let (h, b) = try s.sign(["install_id": s.installID, "command": command, "args": args])
                let answer = try await app.send(h, b)
                #expect(answer.status == .ok, "\(command): \(answer.text)")
                return answer.json["result"] as? [String: Any] ?? [:]
            }
            let created = try await run("tasks.create", ["title": "Call the customer", "due": "2026-12-01"])
            let id = try #require(created["id"] as? String)
            #expect(created["status"] as? String == "open")
            let second = try await run("tasks.create", ["title": "Send the invoice"])
            let updated = try await run("tasks.update", ["id": id, "title": "Call the customer back", "description": "About renewal"])
            #expect(updated["title"] as? String == "Call the customer back")
            #expect(updated["due"] as? String == "2026-12-01")
            let done = try await run("tasks.complete", ["id": id])
            #expect(done["status"] as? String == "done")
            #expect(done["completed_at"] is String)

            let all = try await run("tasks.list", [:])
            #expect((all["tasks"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id, second["id"] as! String])
            let open = try await run("tasks.list", ["status": "open"])
            #expect((open["tasks"] as? [[String: Any]])?.count == 1)

            let (h, b) = try s.sign(["install_id": s.installID, "command": "tasks.complete", "args": ["id": "tsk_nope"]])
            #expect(try await app.send(h, b).json["code"] as? String == "not_found")
            let (h2, b2) = try s.sign(["install_id": s.installID, "command": "tasks.create", "args": ["title": "x", "due": "next week"]])
            #expect(try await app.send(h2, b2).json["code"] as? String == "invalid_args")

            let events = try await app.runtime.database.read { try await OutboxStore.events(install: s.installID, on: $0) }.map(\.type)
            #expect(events == ["app.installed", "task.created", "task.created", "task.updated", "task.completed"])

            #expect(try await app.call(.delete, "/api/v1/installs/\(s.installID)", token: s.adminToken).status == .ok)
            try await app.runtime.hooks.dispatchPending()
            #expect(try await app.runtime.database.read { try await PluginDataStore.count(install: s.installID, on: $0) } == 0)
        }
    }
}
