import Foundation
import Hummingbird
import Logging

/// Wraps the router: checks the API key and the declared body size before routing, turns every
/// error (the router's 404 and 405 included) into OpenAI's error JSON, and counts and logs each answer.
struct GuardedResponder<Inner: HTTPResponder>: HTTPResponder where Inner.Context == ServeRequestContext {
    let inner: Inner
    let configuration: ServerConfiguration
    let metrics: ServerMetrics
    let knownPaths: Set<String>

    func respond(to request: Request, context: ServeRequestContext) async throws -> Response {
        let start = ContinuousClock.now
        let path = request.uri.path
        var response: Response
        do {
            if path != "/health", let key = configuration.apiKey, !authorized(request, key: key) { throw APIError.unauthorized }
            if let declared = request.headers[.contentLength].flatMap({ Int($0) }), declared > configuration.maxBodyBytes {
                throw APIError.tooLarge(configuration.maxBodyBytes)
            }
            response = try await inner.respond(to: request, context: context)
        } catch {
            let e = APIError.from(error)
            response = e.response()
            let level: Logger.Level = e.status.code >= 500 ? .error : .info
            context.logger.log(level: level, "request refused", metadata: [
                "path": .string(path), "status": .stringConvertible(e.status.code), "reason": .string(e.message)])
        }
        let elapsed = start.duration(to: .now)
        // Unknown paths share one label: a client must not grow the metrics without bound.
        metrics.request(path: knownPaths.contains(path) ? path : "other", status: response.status.code,
                        seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18)
        return response
    }

    /// `Authorization: Bearer <key>`, compared in time independent of where the first difference is.
    private func authorized(_ request: Request, key: String) -> Bool {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        let given = Array(header.dropFirst("Bearer ".count).utf8), wanted = Array(key.utf8)
        var diff = given.count ^ wanted.count
        for i in 0..<wanted.count { diff |= Int(wanted[i] ^ (i < given.count ? given[i] : 0)) }
        return diff == 0
    }
}
