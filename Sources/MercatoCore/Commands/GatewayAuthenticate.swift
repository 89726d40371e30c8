import Foundation
import Logging
import MercatoCrypto
import MercatoHooks
import MercatoStorage

/// The gateway's first stage: who signed the request, and whether it may be judged at all
/// (CONTRACT §4: signature and timestamp). Every refusal here is unauthenticated: no log row,
/// a metric, and the caller address's allowance for refusals.
extension CommandGateway {
    /// The signature headers, each present and well-formed.
    struct SignatureHeaders: Sendable, Equatable {
        var webhookID: String
        /// The timestamp as sent: it is part of the signed content.
        var timestampText: String
        var timestamp: Int64
        var signature: String
    }

    /// A request whose signature verified with its install's credential, within the timestamp
    /// window.
    struct SignedRequest: Sendable {
        var requestID: String
        /// The caller's address (``Incoming/client``), charged for refusals until the request
        /// is authenticated.
        var client: String
        var webhookID: String
        var installID: String
        var body: CommandBody
        /// The raw body, whose hash binds the idempotency key.
        var bytes: [UInt8]
        var signature: String
        /// `{webhook-id}.{timestamp}.{body}`: verified again if the target is reloaded.
        var content: [UInt8]
        /// The install's cached (or just loaded) facts that verified the signature.
        var entry: GatewayCache.Entry
        /// The server's time when the timestamp was judged (Unix seconds).
        var now: Double
    }

    /// Headers, body, the install's credential, signature, timestamp: in that order, each
    /// failure refused before the next is looked at.
    func authenticate(_ incoming: Incoming) async -> Stage<SignedRequest> {
        func reject(_ error: APIError) -> Stage<SignedRequest> {
            .answer(refuseUnauthenticated(error, client: incoming.client, requestID: incoming.requestID))
        }
        let headers: SignatureHeaders
        switch Self.signatureHeaders(incoming) {
        case .failure(let error): return reject(error)
        case .success(let read): headers = read
        }
        guard let body = CommandBody.decode(incoming.body) else {
            return reject(APIError(status: 400, code: "malformed_json", title: "Malformed JSON", detail: "The body must be a JSON object with install_id, command and args."))
        }
        // The install names the credential; without one nothing can be verified, so an absent or
        // unknown install is a failed signature (401), not a 404 that would confirm ids.
        guard let installID = body.installID, RecordID.isValid(installID, prefix: "ins") else { return reject(Self.unverifiable) }
        let content = StandardWebhooks.signedContent(id: headers.webhookID, timestamp: headers.timestampText, body: incoming.body)
        let entry: GatewayCache.Entry
        do {
            switch try await verify(headers.signature, content: content, install: installID) {
            case .noInstall: return reject(Self.unverifiable)
            case .mismatch: return reject(Self.signatureMismatch)
            case .verified(let verified): entry = verified
            }
        } catch {
            logger.error("command target lookup failed", metadata: ["error_type": "\(type(of: error))"])
            return .answer(unavailable("Storage is unavailable; retry with the same webhook-id.", requestID: incoming.requestID,
                                       rate: failures.peek(incoming.client, limit: failureLimit, now: clock.now().timeIntervalSince1970)))
        }
        let now = clock.now().timeIntervalSince1970
        guard abs(now - Double(headers.timestamp)) <= Self.timestampTolerance else {
            return reject(APIError(status: 401, code: "timestamp_out_of_window", title: "Timestamp out of window",
                                   detail: "webhook-timestamp is more than 300 seconds from the server's clock (server time \(Int(now)))."))
        }
        return .next(SignedRequest(requestID: incoming.requestID, client: incoming.client, webhookID: headers.webhookID, installID: installID, body: body, bytes: incoming.body,
                                   signature: headers.signature, content: content, entry: entry, now: now))
    }

    /// Reads the signature headers (CONTRACT §4): a missing or malformed one is a 400
    /// `missing_header` naming it, the first in the order id, timestamp, signature.
    static func signatureHeaders(_ incoming: Incoming) -> Result<SignatureHeaders, APIError> {
        guard let webhookID = incoming.webhookID, !webhookID.isEmpty else { return .failure(missing("webhook-id")) }
        guard webhookID.utf8.count <= 128, webhookID.utf8.allSatisfy(isIDByte) else {
            return .failure(missing("webhook-id", "must be 1-128 characters of A-Z a-z 0-9 _ . -"))
        }
        guard let timestampText = incoming.timestamp, !timestampText.isEmpty else { return .failure(missing("webhook-timestamp")) }
        // Whole seconds in plain digits (no sign, no space), as Standard Webhooks writes them.
        guard timestampText.utf8.count <= 18, timestampText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let timestamp = Int64(timestampText) else {
            return .failure(missing("webhook-timestamp", "must be Unix seconds in digits"))
        }
        guard let signature = incoming.signature, !signature.isEmpty else { return .failure(missing("webhook-signature")) }
        return .success(SignatureHeaders(webhookID: webhookID, timestampText: timestampText, timestamp: timestamp, signature: signature))
    }

    /// What the install's credential says of a signature.
    enum Verification: Sendable {
        /// No such install: nothing to verify against.
        case noInstall
        case mismatch
        /// The install's entry (cached or just loaded) verified it.
        case verified(GatewayCache.Entry)
    }

    /// Verifies the signature with the install's entry, from the cache or loaded. A cached entry
    /// that fails looks at the stored stamp once: the secret (or key) may have been created on
    /// another node since it was loaded, and a stamp that moved reloads it.
    private func verify(_ signature: String, content: [UInt8], install installID: String) async throws -> Verification {
        func judged(_ entry: GatewayCache.Entry) -> Verification {
            verifies(signature, content: content, with: entry) ? .verified(entry) : .mismatch
        }
        guard let cached = cache.get(installID) else {
            guard let loaded = try await load(installID) else { return .noInstall }
            return judged(loaded)
        }
        if verifies(signature, content: content, with: cached) { return .verified(cached) }
        guard let stamp = try await CommandStore.stamp(install: installID, in: database), stamp != cached.stamp,
              let loaded = try await load(installID) else { return .mismatch }
        return judged(loaded)
    }

    /// Whether any signature in the header verifies `content` with the entry's credential now.
    func verifies(_ signature: String, content: [UInt8], with entry: GatewayCache.Entry) -> Bool {
        StandardWebhooks.verify(header: signature, content: content, keys: entry.keys(at: clock.millis), publicKey: entry.publicKey)
    }

    /// Reads everything the gateway needs about `installID` and caches it. The stamp is read
    /// first, so a change racing with the load leaves an older stamp (the next command reloads),
    /// never a newer stamp over older data.
    func load(_ installID: String) async throws -> GatewayCache.Entry? {
        let entry = try await database.read { db -> GatewayCache.Entry? in
            guard let stamp = try await CommandStore.stamp(install: installID, on: db),
                  let found = try await InstallStore.find(id: installID, on: db),
                  let org = try await OrgStore.find(id: found.orgId, on: db), let app = try await AppStore.find(id: found.appId, on: db),
                  let manifest = try await self.registry.manifests.manifest(appID: app.id, version: app.latestVersion, on: db)
            else { return nil }
            let plan = Plan(rawValue: org.plan) ?? .free
            var install = found
            if install.removedAt != nil { install.status = .uninstalled }
            let secrets = manifest.commandSigning.type == "hmac" ? try await self.registry.verificationSecrets(of: app, kind: .command, on: db) : []
            let target = Target(install: install, orgName: org.name, plan: plan, signing: manifest.commandSigning,
                                rate: PlanLimits.defaultCommandRates[plan]!, scopes: install.scopes)
            return GatewayCache.Entry(target: target, stamp: stamp,
                                      keys: secrets.compactMap { secret in StandardWebhooks.secretKey(secret.text).map { ($0, secret.validUntil) } },
                                      publicKey: manifest.commandSigning.publicKey.flatMap(ManifestValidator.ed25519PublicKey),
                                      loadedAt: .now)
        }
        if let entry { cache.put(installID, entry) } else { cache.remove(installID) }
        return entry
    }

    /// No install of a signing app is named: nothing to verify against.
    static let unverifiable = APIError(status: 401, code: "invalid_signature", title: "Invalid signature",
                                       detail: "The signature cannot be verified: the body's `install_id` names no install of a signing app.")

    /// The install's credential does not verify the request.
    static let signatureMismatch = APIError(status: 401, code: "invalid_signature", title: "Invalid signature",
                                            detail: "No signature in webhook-signature matches this app's command credential over the id, timestamp and body.")
}
