import ArgumentParser

/// `mercato app …`: the app developer's tools. `validate`, `sign`, `verify` and `init` work
/// offline (no server, no database); `send` and `tail` talk to a server over HTTP.
struct AppCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "app",
        abstract: "Tools for app developers: check a manifest, sign and send commands, verify events, start an app.",
        discussion: """
            Offline: validate, sign, verify, init (no server or database needed). Online: send and tail.
            Quick start: docs/quickstart.md.

            Shell completion: `mercato --generate-completion-script bash > /etc/bash_completion.d/mercato`
            (also zsh and fish).
            """,
        subcommands: [AppValidate.self, AppSign.self, AppSend.self, AppVerify.self, AppInit.self, AppTail.self]
    )
}
