import Foundation

/// How `langtune serve` listens and what it accepts: address, API key and the limits that keep
/// one client from starving the others or the machine.
public struct ServerConfiguration: Sendable {
    /// Address to bind; loopback unless the operator asks otherwise.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one (tests), `ServeApp.run`'s `onListening` gets the bound port.
    public var port: Int = 8080
    /// When set, every endpoint but `/health` requires `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// Largest request body accepted, in bytes (413 above it).
    public var maxBodyBytes: Int = 1 << 20
    /// Longest prompt accepted, in tokens (400 above it; the context limit applies as well).
    public var maxPromptTokens: Int = 1536
    /// Seconds a new connection has to deliver its request headers (408 after: slow-loris clients),
    /// and a request its body.
    public var headerTimeoutSeconds: Double = 10
    /// Seconds an idle keep-alive connection stays open.
    public var idleTimeoutSeconds: Double = 60
    /// The name `/v1/models` gives the base model; requests may also name it `base` or leave `model` empty.
    public var baseModelName: String = "base"

    public init() {}
}
