import ArgumentParser
import Foundation

/// `mercato app init DIR`: a manifest, a receiver that verifies events, and next steps.
struct AppInit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Start an app in DIR: a commented manifest.yaml, receiver.py (verifies events) and a README of next steps.",
        discussion: """
            Example:
              mercato app init hello-app
              mercato app validate hello-app/manifest.yaml
            """
    )

    @Argument(help: "The folder to create (it must be new or empty).")
    var directory: String

    @Option(help: "The app's key (default: the folder's name).")
    var key: String?

    @Option(help: "The port receiver.py listens on.")
    var port: Int = 8787

    func run() throws {
        let folder = URL(fileURLWithPath: directory)
        let appKey = key ?? folder.lastPathComponent.lowercased()
        guard appKey.range(of: "^[a-z][a-z0-9-]{2,39}$", options: .regularExpression) != nil else {
            throw ValidationError("the app key `\(appKey)` must be 3-40 lower-case letters, digits and dashes, starting with a letter (use --key)")
        }
        guard (1 ... 65535).contains(port) else { throw ValidationError("--port must be 1-65535") }
        let existing = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        guard existing.isEmpty else { throw ValidationError("\(directory) is not empty; choose a new folder") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let files = [
            ("manifest.yaml", AppTemplates.manifest(key: appKey, port: port)),
            ("receiver.py", AppTemplates.receiver(port: port)),
            ("README.md", AppTemplates.readme(key: appKey, directory: directory, port: port)),
        ]
        for (name, text) in files {
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
            print("wrote \(folder.appendingPathComponent(name).path)")
        }
        print("next: \(directory)/README.md")
    }
}
