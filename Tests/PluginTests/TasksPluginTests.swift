import MercatoHooks
import MercatoHooksTesting
import TasksPlugin
import Testing

@Suite struct TasksPluginTests {
    @Test func lifecycleEmitsEvents() async throws {
        let host = FakeHost()
        let install = host.install()
        let tasks = TasksPlugin()
        let created = try await tasks.handle(host.command("tasks.create", ["title": "Ship it", "due": "2026-12-01"], install), host.context(install))
        let id = try #require(created["id"])
        _ = try await tasks.handle(host.command("tasks.update", ["id": id, "title": "Ship it now"], install), host.context(install))
        let done = try await tasks.handle(host.command("tasks.complete", ["id": id], install), host.context(install))
        #expect(done["status"] == .string("done"))
        #expect(host.emitted.map(\.event.type) == ["task.created", "task.updated", "task.completed"])
        #expect(host.emitted.allSatisfy { $0.install == install.installID })
        let open = try await tasks.handle(host.command("tasks.list", ["status": "open"], install), host.context(install))
        #expect(open["tasks"]?.arrayValue?.isEmpty == true)
    }

    @Test func badDueDateIsRefused() async throws {
        let host = FakeHost()
        let install = host.install()
        await #expect(throws: CommandError.self) {
            try await TasksPlugin().handle(host.command("tasks.create", ["title": "x", "due": "next tuesday"], install), host.context(install))
        }
        #expect(host.emitted.isEmpty)
    }

    @Test func uninstallDropsTasks() async throws {
        let host = FakeHost()
        let install = host.install()
        _ = try await TasksPlugin().handle(host.command("tasks.create", ["title": "x"], install), host.context(install))
        try await TasksPlugin().installRemoved(install, host.context(install))
        #expect(host.keys(in: install.installID).isEmpty)
    }
}
