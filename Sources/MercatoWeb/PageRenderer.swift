import Foundation
import Mustache

/// The templates (`Resources/templates/*.mustache`: one layout, partials, one file per page),
/// parsed once at start. Templates only show a model that Swift code built; every value goes
/// through Mustache's escaping (`{{x}}`): the triple-brace form is never used.
struct PageRenderer: Sendable {
    let library: MustacheLibrary

    init() throws {
        guard let folder = Bundle.module.url(forResource: "templates", withExtension: nil) else {
            throw PageSetupError("the templates folder is missing from MercatoWeb's resources")
        }
        var library = MustacheLibrary()
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".mustache") }
        for file in names {
            let text = try String(contentsOf: folder.appendingPathComponent(file), encoding: .utf8)
            try library.register(text, named: String(file.dropLast(".mustache".count)))
        }
        self.library = library
    }

    /// The page `name` rendered with `model`.
    func render(_ name: String, _ model: [String: Any]) -> String {
        library.render(model, withTemplate: name) ?? ""
    }
}

/// The static files (`Resources/static`): the stylesheet and the small script, read once.
struct StaticFiles: Sendable {
    let files: [String: (type: String, body: String)]

    init() throws {
        guard let folder = Bundle.module.url(forResource: "static", withExtension: nil) else {
            throw PageSetupError("the static folder is missing from MercatoWeb's resources")
        }
        var files: [String: (type: String, body: String)] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let type = name.hasSuffix(".css") ? "text/css; charset=utf-8" : name.hasSuffix(".js") ? "text/javascript; charset=utf-8"
                : name.hasSuffix(".svg") ? "image/svg+xml" : nil
            guard let type else { continue }
            files[name] = (type, try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8))
        }
        self.files = files
    }
}

struct PageSetupError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
