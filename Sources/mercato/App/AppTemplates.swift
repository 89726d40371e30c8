/// The files `mercato app init` writes. The manifest validates as written (a test checks it).
enum AppTemplates {
    static func manifest(key: String, port: Int) -> String {
        """
        # The manifest of your app (CONTRACT §3, field reference: catalog/README.md).
        # Check it offline with: mercato app validate manifest.yaml
        key: \(key)                      # unique in the registry: 3-40 of a-z 0-9 -, starting with a letter
        name: \(key)
        version: 0.1.0                   # semver; every update you register must grow it
        description: >-
          What the app does for an org, in one or two sentences. Org admins read this in the catalog.
        developer:
          name: Your company
          url: https://example.com
          email: developers@example.com
        categories:
          - productivity
        plan: free                       # the lowest plan (free, pro, enterprise) that may install it
        scopes:                          # what the app may do; admins see these before installing
          - install:read
          - kv:read
          - kv:write
        events:                          # what Mercato posts to webhook_url (signed, at least once)
          - app.installed
          - app.uninstalled
          - install.config_updated
        # http is accepted only on loopback, for development; use https in production.
        webhook_url: http://127.0.0.1:\(port)/webhooks
        command_signing:
          type: hmac                     # or: {type: ed25519, public_key: whpk_...}
        config:                          # the form an admin fills in when installing
          - key: greeting
            label: Greeting
            type: string
            required: false
            default: Hello
            help: What the app says first.

        """
    }

    static func receiver(port: Int) -> String {
        """
        \"\"\"Receives Mercato's events for this app and verifies each one before trusting it.

        Run: MERCATO_WEBHOOK_SECRET=whsec_... python3 receiver.py
        Needs the Python SDK: pip install <mercato checkout>/sdk/python (or PYTHONPATH=<checkout>/sdk/python).
        Every verified event is printed and appended to events.jsonl next to this file.
        \"\"\"
        import json
        import os
        import sys
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from mercato_sdk.webhooks import WebhookVerificationError, verify_webhook

        SECRETS = [s for s in os.environ.get("MERCATO_WEBHOOK_SECRET", "").split(",") if s]
        PORT = int(os.environ.get("PORT", "\(port)"))
        LOG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "events.jsonl")
        seen = set()  # deliveries are at least once: dedupe on webhook-id


        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    event = verify_webhook(dict(self.headers), body, secrets=SECRETS)
                except WebhookVerificationError as error:
                    self.send_response(401)
                    self.end_headers()
                    print(f"refused: {error}", file=sys.stderr, flush=True)
                    return
                if event.id not in seen:
                    seen.add(event.id)
                    payload = json.loads(body)
                    line = json.dumps({"id": event.id, "type": payload.get("type"), "data": payload.get("data")})
                    print(line, flush=True)
                    with open(LOG, "a") as log:
                        log.write(line + "\\n")
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass


        if __name__ == "__main__":
            if not SECRETS:
                sys.exit("set MERCATO_WEBHOOK_SECRET to the webhook secret shown when you registered the app")
            print(f"listening on 127.0.0.1:{PORT}", flush=True)
            ThreadingHTTPServer(("127.0.0.1", PORT), Receiver).serve_forever()

        """
    }

    static func readme(key: String, directory: String, port: Int) -> String {
        """
        # \(key)

        Made by `mercato app init`. Next steps (docs/quickstart.md walks through them):

        1. Edit `manifest.yaml`, then check it: `mercato app validate \(directory)/manifest.yaml`.
        2. Register it (a token with the developer role): `curl -s $MERCATO_URL/api/v1/developer/apps
           -H "Authorization: Bearer $DEV" -H 'Content-Type: application/yaml' --data-binary @\(directory)/manifest.yaml`.
           The answer holds the app's secrets once: `webhook` (verifies events) and `command` (signs commands).
        3. Start the receiver: `MERCATO_WEBHOOK_SECRET=whsec_... python3 \(directory)/receiver.py` (port \(port)).
        4. Install the app in an org; the receiver prints `app.installed`.
        5. Send a command: `mercato app send --url $MERCATO_URL --secret <command secret> --install ins_... --command ping`.
        6. Watch deliveries and commands: `mercato app tail --app \(key) --url $MERCATO_URL --token $DEV`.

        """
    }
}
