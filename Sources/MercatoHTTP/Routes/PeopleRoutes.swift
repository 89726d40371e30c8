import Foundation
import Hummingbird
import MercatoCore
import MercatoHooks
import MercatoStorage

/// `POST /api/v1/orgs/{org_id}/invitations` (CONTRACT §8): a single-use link for a person.
struct PeopleRoutes {
    let tenancy: TenancyService
    let people: PeopleService

    struct CreateInvitation: Decodable {
        let email: String
        let role: String
    }

    struct InvitationBody: ResponseEncodable {
        let id: String
        let url: String
        let email: String
        let role: String
        let expiresAt: Date
    }

    func register(on api: RouterGroup<AppRequestContext>) {
        api.post("orgs/{org_id}/invitations") { request, context in
            let caller = try context.requirePrincipal()
            let orgID = try context.parameters.require("org_id")
            _ = try await tenancy.org(orgID, visibleTo: caller)
            let body = try await request.decodeJSON(CreateInvitation.self, context: context)
            guard let role = MemberRole(rawValue: body.role) else {
                throw APIError.fieldProblems([.init(field: "role", message: "must be one of owner, admin, developer, member")])
            }
            let made = try await people.invite(in: orgID, email: body.email, role: role, by: caller, tenancy: tenancy, requestID: context.requestID)
            return EditedResponse(status: .created, response: InvitationBody(
                id: made.id, url: made.url, email: body.email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased(),
                role: role.rawValue, expiresAt: Timestamp.date(millis: made.expiresAt)))
        }
    }
}
