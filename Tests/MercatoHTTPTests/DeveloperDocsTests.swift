import Foundation
import HTTPTypes
import MercatoCore
import MercatoHTTP
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("Pages: the API reference (/developer/docs)")
struct DeveloperDocsTests {
    /// The page shows every operation of the bundled OpenAPI document under its tag, for
    /// developers and up, with curl samples whose bodies the API accepts as they are.
    @Test(arguments: TestEngines.all)
    func everyOperationIsShownByTagWithACurlSampleTheAPIAccepts(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg()
            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "me@example.com")
            let developer = try await app.signedIn(org: org, role: "developer", by: owner, email: "dev@example.com")
            #expect(try await PageBrowser(app).get("/developer/docs").status == .seeOther)
            #expect(try await member.get("/developer/docs").status == .forbidden)

            let page = try await developer.get("/developer/docs")
            #expect(page.status == .ok)
            #expect(page.headers[.contentSecurityPolicy]?.contains("default-src 'self'") == true)
            let html = page.text
            let text = Self.unescaped(html)

            let document = try #require(try JSONSerialization.jsonObject(with: Data(OpenAPIDocument.bytes)) as? [String: Any])
            let paths = try #require(document["paths"] as? [String: [String: Any]])
            var operations = 0
            for (path, item) in paths {
                for method in ["get", "post", "put", "patch", "delete"] {
                    guard let operation = item[method] as? [String: Any] else { continue }
                    operations += 1
                    let tag = try #require((operation["tags"] as? [String])?.first)
                    #expect(text.contains("\(method.uppercased())</span> <code>\(path)</code>"), "\(method) \(path)")
                    #expect(html.contains("<h2 id=\"tag-\(tag)-title\">\(tag)</h2>"), "\(tag)")
                }
            }
            #expect(html.components(separatedBy: "<article class=\"operation\"").count - 1 == operations)
            #expect(operations > 30)

            let base = app.runtime.settings.publicURL
            // Public routes have no token; the signed command route shows its signature headers.
            let health = try #require(Self.sample(in: text, startingWith: "curl -s \"\(base)/healthz\""))
            #expect(!health.contains("Authorization"))
            let command = try #require(Self.sample(in: text, startingWith: "curl -s -X POST \"\(base)/api/v1/apps/commands\""))
            #expect(command.contains("-H \"webhook-signature: ${WEBHOOK_SIGNATURE}\"") && !command.contains("Authorization"))

            // The samples' bodies are accepted by the API as they stand.
            for (path, expected) in [("/api/v1/orgs/${ORG_ID}/tokens", "token"), ("/api/v1/orgs/${ORG_ID}/invitations", "url")] {
                let sample = try #require(Self.sample(in: text, startingWith: "curl -s -X POST \"\(base)\(path)\""), "\(path)")
                #expect(sample.contains("-H \"Authorization: Bearer $MERCATO_TOKEN\""))
                let body = try #require(sample.components(separatedBy: "-d '").last?.dropLast(), "\(path)")
                let real = path.replacingOccurrences(of: "${ORG_ID}", with: org)
                let answer = try await app.call(.post, real, token: owner, raw: String(body))
                #expect(answer.status == .created, "\(path): \(body) → \(answer.text)")
                #expect(answer.json[expected] != nil, "\(path)")
            }
        }
    }

    /// One curl sample from the page: from its first line to the end of its `<code>`.
    static func sample(in text: String, startingWith start: String) -> String? {
        guard let from = text.range(of: start) else { return nil }
        guard let to = text[from.lowerBound...].range(of: "</code>") else { return nil }
        return String(text[from.lowerBound ..< to.lowerBound])
    }

    static func unescaped(_ html: String) -> String {
        html.replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">").replacingOccurrences(of: "&amp;", with: "&")
    }
}
