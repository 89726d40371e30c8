import PostgresNIO
public import ServiceLifecycle

extension Database: Service {
    /// Runs storage in a ServiceLifecycle group: a PostgreSQL client serves until the group
    /// shuts down; then every connection closes. Put it first in the group, so that it stops
    /// last, after everything that uses it.
    public func run() async throws {
        if case .postgres(let client, nil) = backend {
            running.open()
            // Ends on the group's graceful shutdown (the client watches for it).
            await client.run()
        } else {
            running.open()
            try? await gracefulShutdown()
        }
        await close()
    }

    /// Returns once statements can run (storage's ``run()`` started the client), after one
    /// statement showed the server answers.
    public func waitUntilRunning() async throws {
        await running.wait()
        try Task.checkCancellation()
        if case .postgres = backend { try await checkReachable() }
    }
}
