import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// `POST /api/v1/orgs`, `GET /api/v1/orgs/{org_id}`, and the org's API tokens (CONTRACT §9).
struct OrgRoutes {
    let tenancy: TenancyService

    struct CreateOrg: Decodable {
        let name: String
        let plan: String
    }

    struct OrgBody: ResponseEncodable {
        let id: String
        let name: String
        let plan: String
        let createdAt: Date

        init(_ org: OrgRecord) {
            id = org.id
            name = org.name
            plan = org.plan
            createdAt = Timestamp.date(millis: org.createdAt)
        }
    }

    struct CreateToken: Decodable {
        let name: String
        let role: String
        let scopes: [String]?
        let expiresAt: String?
        let hourlyLimit: Int?
    }

    struct TokenBody: ResponseEncodable {
        let id: String
        let token: String
        let role: String
        let name: String
        let orgId: String
        let userId: String
        let scopes: [String]
        let expiresAt: Date?
        let hourlyLimit: Int
        let createdAt: Date

        private enum CodingKeys: String, CodingKey {
            case id, token, role, name, orgId, userId, scopes, expiresAt, hourlyLimit, createdAt
        }

        /// `expires_at` is always present (`null` when the token does not expire).
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(token, forKey: .token)
            try c.encode(role, forKey: .role)
            try c.encode(name, forKey: .name)
            try c.encode(orgId, forKey: .orgId)
            try c.encode(userId, forKey: .userId)
            try c.encode(scopes, forKey: .scopes)
            try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(hourlyLimit, forKey: .hourlyLimit)
            try c.encode(createdAt, forKey: .createdAt)
        }
    }

    /// A token as listed: never its text; scopes and hourly limit as in force (the role's and
    /// the plan's when the token has none of its own).
    struct TokenListBody: ResponseEncodable {
        let id: String
        let name: String
        let role: String
        let orgId: String
        let userId: String
        let scopes: [String]
        let expiresAt: Date?
        let hourlyLimit: Int
        let createdAt: Date
        let lastUsedAt: Date?
        let revokedAt: Date?

        init(_ t: TokenRecord, defaultHourlyLimit: Int) {
            id = t.id
            name = t.name
            role = t.role
            orgId = t.orgId ?? ""
            userId = t.principalId ?? ""
            scopes = TokenGrant.scopes(stored: t.scopes, role: MemberRole(rawValue: t.role) ?? .member).sorted().map(\.rawValue)
            expiresAt = t.expiresAt.map { Timestamp.date(millis: $0) }
            hourlyLimit = t.hourlyLimit ?? defaultHourlyLimit
            createdAt = Timestamp.date(millis: t.createdAt)
            lastUsedAt = t.lastUsedAt.map { Timestamp.date(millis: $0) }
            revokedAt = t.revokedAt.map { Timestamp.date(millis: $0) }
        }

        private enum CodingKeys: String, CodingKey {
            case id, name, role, orgId, userId, scopes, expiresAt, hourlyLimit, createdAt, lastUsedAt, revokedAt
        }

        /// `expires_at` and `last_used_at` are always present (`null` when none).
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(id, forKey: .id)
            try c.encode(name, forKey: .name)
            try c.encode(role, forKey: .role)
            try c.encode(orgId, forKey: .orgId)
            try c.encode(userId, forKey: .userId)
            try c.encode(scopes, forKey: .scopes)
            try c.encode(expiresAt, forKey: .expiresAt)
            try c.encode(hourlyLimit, forKey: .hourlyLimit)
            try c.encode(createdAt, forKey: .createdAt)
            try c.encode(lastUsedAt, forKey: .lastUsedAt)
            try c.encodeIfPresent(revokedAt, forKey: .revokedAt)
        }
    }

    struct UsageBody: ResponseEncodable {
        let at: Date
        let method: String
        let path: String
        let status: Int
        let requestId: String

        init(_ r: TokenUsageRecord) {
            at = Timestamp.date(millis: r.at)
            method = r.method
            path = r.path
            status = r.status
            requestId = r.requestId
        }
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.get("orgs/{org_id}/tokens/{tok_id}/usage") { request, context in
            let page = try Pagination(request)
            let (rows, next) = try await tenancy.usage(of: try context.parameters.require("tok_id"), in: try context.parameters.require("org_id"),
                                                       by: try context.requirePrincipal(), cursor: page.cursor, limit: page.limit)
            return Page(data: rows.map(UsageBody.init), nextCursor: next)
        }

        api.get("orgs/{org_id}/tokens") { _, context in
            let caller = try context.requirePrincipal()
            let orgID = try context.parameters.require("org_id")
            let tokens = try await tenancy.tokens(in: orgID, by: caller)
            let fallback = tenancy.defaultHourlyLimit(of: try await tenancy.org(orgID, visibleTo: caller))
            return Page(data: tokens.map { TokenListBody($0, defaultHourlyLimit: fallback) }, nextCursor: nil)
        }

        api.delete("orgs/{org_id}/tokens/{tok_id}") { _, context in
            let caller = try context.requirePrincipal()
            try await tenancy.revokeToken(try context.parameters.require("tok_id"), in: try context.parameters.require("org_id"), by: caller,
                                          requestID: context.requestID)
            return Response(status: .noContent)
        }

        api.post("orgs") { request, context in
            let caller = try context.requirePrincipal()
            let body = try await request.decodeJSON(CreateOrg.self, context: context)
            var problems: [APIError.FieldProblem] = []
            let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
            if name.isEmpty || name.count > 200 { problems.append(.init(field: "name", message: "must be 1 to 200 characters")) }
            let plan = Plan(rawValue: body.plan)
            if plan == nil { problems.append(.init(field: "plan", message: "must be one of free, pro, enterprise")) }
            guard problems.isEmpty, let plan else {
                throw APIError.fieldProblems(problems)
            }
            let org = try await tenancy.createOrg(name: name, plan: plan, by: caller, requestID: context.requestID)
            return EditedResponse(status: .created, response: OrgBody(org))
        }

        api.get("orgs/{org_id}") { _, context in
            let caller = try context.requirePrincipal()
            let id = try context.parameters.require("org_id")
            return OrgBody(try await tenancy.org(id, visibleTo: caller))
        }

        api.post("orgs/{org_id}/tokens") { request, context in
            let caller = try context.requirePrincipal()
            let orgID = try context.parameters.require("org_id")
            // Visibility first: another org's id answers 404 before the body is looked at.
            let org = try await tenancy.org(orgID, visibleTo: caller)
            let body = try await request.decodeJSON(CreateToken.self, context: context)
            var problems: [APIError.FieldProblem] = []
            let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
            if name.isEmpty || name.count > 100 { problems.append(.init(field: "name", message: "must be 1 to 100 characters")) }
            let role = MemberRole(rawValue: body.role)
            if role == nil { problems.append(.init(field: "role", message: "must be one of owner, admin, developer, member")) }
            guard problems.isEmpty, let role else {
                throw APIError.fieldProblems(problems)
            }
            let options = TokenOptions(scopes: body.scopes, expiresAt: body.expiresAt, hourlyLimit: body.hourlyLimit)
            let (record, text) = try await tenancy.createToken(in: orgID, name: name, role: role, options: options, by: caller,
                                                               requestID: context.requestID)
            let listed = TokenListBody(record, defaultHourlyLimit: tenancy.defaultHourlyLimit(of: org))
            return EditedResponse(
                status: .created,
                response: TokenBody(id: record.id, token: text, role: record.role, name: record.name, orgId: orgID,
                                    userId: record.principalId ?? "", scopes: listed.scopes, expiresAt: listed.expiresAt,
                                    hourlyLimit: listed.hourlyLimit, createdAt: Timestamp.date(millis: record.createdAt))
            )
        }
    }
}
