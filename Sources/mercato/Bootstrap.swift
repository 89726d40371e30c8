import Foundation
import Logging
import MercatoCore

/// Logging set up once per process: JSON lines at `MERCATO_LOG_LEVEL`.
enum Bootstrap {
    static func logging(settings: Settings) -> Logger {
        let level = Logger.Level(rawValue: settings.logLevel) ?? .info
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        return Logger(label: "mercato")
    }

    /// Settings, or a clear message and exit 2.
    static func settings() -> Settings {
        do { return try Settings() } catch {
            FileHandle.standardError.write(Data("mercato: \(error)\n".utf8))
            exit(2)
        }
    }
}
