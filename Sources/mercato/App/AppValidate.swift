import ArgumentParser
import Foundation
import MercatoCore
import MercatoHooks

/// `mercato app validate FILE`: the server's own manifest validator, offline.
struct AppValidate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check a manifest (JSON or YAML) the way the server will; exit 0 when valid, 1 with every problem.",
        discussion: """
            Scopes and events are checked against the built-in plugins; `oauth.provider` against the
            providers of the catalog folder (--catalog, MERCATO_CATALOG_DIR, or ./catalog).

            Example:
              mercato app validate my-app/manifest.yaml
              # oauth.provider: `slak` is not a provider of this server (known: github, slack, …)
            """
    )

    @Argument(help: "The manifest file (.yaml/.yml is read as YAML, anything else as JSON).")
    var file: String

    @Option(help: "A catalog folder whose providers/ count as known OAuth providers.")
    var catalog: String?

    func run() throws {
        let url = URL(fileURLWithPath: file)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw ValidationError("cannot read the manifest file \(file)")
        }
        let format: ManifestDocument.Format = ["yaml", "yml"].contains(url.pathExtension.lowercased()) ? .yaml : .json
        let problems: [APIError.FieldProblem]
        do {
            let document = try ManifestDocument.parse(data, format: format)
            let validator = ManifestValidator(capabilities: try Capabilities(manifests: BuiltInPlugins.all.map { type(of: $0).manifest }),
                                              providers: Self.providers(in: catalog))
            switch validator.validate(document) {
            case .success(let manifest):
                print("\(file): valid (\(manifest.key) \(manifest.version))")
                return
            case .failure(let found):
                problems = found.errors
            }
        } catch let error as APIError {
            problems = error.errors.isEmpty ? [.init(field: "", message: error.detail)] : error.errors
        }
        for problem in problems {
            print(problem.field.isEmpty ? "(document): \(problem.message)" : "\(problem.field): \(problem.message)")
        }
        throw ExitCode(1)
    }

    /// Provider keys: the file names under `<catalog>/providers`.
    static func providers(in folder: String?) -> Set<String> {
        let environment = ProcessInfo.processInfo.environment["MERCATO_CATALOG_DIR"].flatMap { $0 == "none" ? nil : $0 }
        let base = URL(fileURLWithPath: folder ?? environment ?? "catalog").appendingPathComponent("providers")
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return Set(names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") || $0.hasSuffix(".json") }
            .map { URL(fileURLWithPath: $0).deletingPathExtension().lastPathComponent })
    }
}
