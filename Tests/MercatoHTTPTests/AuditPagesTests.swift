import Foundation
import HTTPTypes
import MercatoCore
import MercatoStorage
import MercatoTestSupport
import Testing

@Suite("Pages: the audit trail (/audit) and its CSV export")
struct AuditPagesTests {
    /// Admins read the trail the API serves, filtered and paged; members are refused; the
    /// CSV export is the enterprise plan's, and other plans are told why not.
    @Test(arguments: TestEngines.all)
    func adminsPageThroughTheTrailAndOnlyEnterpriseExports(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg(plan: "pro")
            let admin = try await app.signedIn(org: org, role: "admin", by: owner, email: "ad@example.com")
            let member = try await app.signedIn(org: org, role: "member", by: owner, email: "me@example.com")
            // 55 tokens, one named with markup: its name shows in the entry's details, escaped.
            for index in 0 ..< 55 {
                let name = index == 0 ? "<script>alert(1)</script>" : "token \(index)"
                #expect(try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": name, "role": "member"]).status == .created)
            }
            while try await app.runtime.hooks.dispatchPending() > 0 {}

            #expect(try await PageBrowser(app).get("/audit").status == .seeOther)
            #expect(try await member.get("/audit").status == .forbidden)
            #expect(try await member.get("/audit/export").status == .forbidden)
            #expect(!(try await member.get("/installs").text.contains("href=\"/audit\"")))

            let first = try await admin.get("/audit")
            #expect(first.status == .ok)
            #expect(first.text.contains("href=\"/audit\" aria-current=\"page\""))
            let rowsOnFirst = first.text.components(separatedBy: "<tr><td>").count - 1
            #expect(rowsOnFirst == 50)
            #expect(first.text.contains("token.created"))
            // Actors are shown by name (the owner token's service account, the operator), escaped.
            #expect(first.text.contains("<td>owner<div class=\"muted small\"><code>"))

            #expect(!first.text.contains("<script>alert(1)</script>"))
            // Not enterprise: no export, and the page says why.
            #expect(first.text.contains("CSV export is part of the enterprise plan; this organisation is on the pro plan."))
            #expect(!first.text.contains("/audit/export"))
            let refused = try await admin.get("/audit/export")
            #expect(refused.status == .forbidden)
            #expect(refused.text.contains("enterprise plan"))

            // Older entries: the rest of the trail, down to the org's creation.
            let nextPath = try #require(Self.link(in: first.text, named: "Older"))
            let second = try await admin.get(nextPath)
            #expect(second.status == .ok)
            #expect(second.text.contains("org.created"))
            #expect(second.text.contains("<td>Operator<div class=\"muted small\"><code>operator:"))
            #expect(second.text.contains("<td>Person admin<div"))
            #expect(second.text.contains("invitation.accepted"))
            #expect(second.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(Self.link(in: second.text, named: "Older") == nil)
            #expect(Self.link(in: second.text, named: "Newest") == "/audit")
            let total = rowsOnFirst + second.text.components(separatedBy: "<tr><td>").count - 1
            // org.created, owner token, 2 × (invitation created + accepted), 55 tokens.
            #expect(total == 1 + 1 + 4 + 55, "\(total)")

            // A filter narrows the rows the same way the API's does.
            let filtered = try await admin.get("/audit?action=invitation.accepted")
            #expect(filtered.text.components(separatedBy: "<tr><td>").count - 1 == 2)
            #expect(!filtered.text.contains("token.created"))
            let none = try await admin.get("/audit?action=nothing.like.this")
            #expect(none.text.contains("No entry matches these filters."))
        }
    }

    @Test(arguments: TestEngines.all)
    func enterpriseOrgsExportTheTrailAsCSV(engine: StorageEngine) async throws {
        try await withApp(engine, pages: true) { app in
            let (org, owner) = try await app.makeOrg(plan: "enterprise")
            let admin = try await app.signedIn(org: org, role: "admin", by: owner, email: "ad@example.com")
            #expect(try await app.call(.post, "/api/v1/orgs/\(org)/tokens", token: owner, json: ["name": "=cmd|' /C calc'!A0", "role": "member"]).status == .created)
            while try await app.runtime.hooks.dispatchPending() > 0 {}

            let page = try await admin.get("/audit?action=token.created")
            #expect(page.text.contains("href=\"/audit/export?action=token%2Ecreated\""))
            let csv = try await admin.get("/audit/export?action=token.created")
            #expect(csv.status == .ok)
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(csv.headers[.contentDisposition] == "attachment; filename=\"audit-\(org).csv\"")
            #expect(csv.headers[.contentSecurityPolicy] != nil)
            let lines = csv.text.split(separator: "\r\n")
            #expect(lines.first == "id,occurred_at,actor,action,target,request_id,details")
            #expect(lines.count == 3, "\(lines)")     // header, the two tokens (owner's and the new one)
            #expect(lines.dropFirst().allSatisfy { $0.contains(",token.created,") })
            // The whole trail: org, owner token, invitation created and accepted, the new token.
            #expect(try await admin.get("/audit/export").text.split(separator: "\r\n").count == 6)
        }
    }

    /// The href of the link whose text is `name`, unescaped.
    static func link(in html: String, named name: String) -> String? {
        guard let end = html.range(of: "\">\(name)</a>") else { return nil }
        guard let start = html[..<end.lowerBound].range(of: "href=\"", options: .backwards) else { return nil }
        return String(html[start.upperBound ..< end.lowerBound]).replacingOccurrences(of: "&amp;", with: "&")
    }
}
