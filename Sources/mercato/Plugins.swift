import AuditPlugin
import ConnectionsPlugin
import InboundPlugin
import InstallPlugin
import KVPlugin
import MercatoHooks
import NotificationsPlugin
import TasksPlugin

/// The one place that names every built-in plugin. To add a plugin: a target under Plugins/,
/// a line in Package.swift's `pluginNames`, and a line here (docs/plugins.md).
enum BuiltInPlugins {
    static let all: [any MercatoPlugin] = [
        InstallPlugin(),
        KVPlugin(),
        NotificationsPlugin(),
        TasksPlugin(),
        ConnectionsPlugin(),
        AuditPlugin(),
        InboundPlugin(),
    ]
}
