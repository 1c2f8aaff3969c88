import Hummingbird
import Logging
import NIOCore

/// The request context of `langtune serve`: Hummingbird's basics plus the connection, so a request can
/// notice its client going away and stop generating.
struct ServeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// Where the request came in.
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}
