import Foundation
import HTTPTypes
import Hummingbird
import LangTune
import NIOCore

/// An error the API reports to its client as OpenAI does: a status and
/// `{"error": {"message", "type", "param", "code"}}`.
struct APIError: Error, Sendable, CustomStringConvertible {
    let status: HTTPResponse.Status
    let message: String
    let type: String
    let code: String?
    var param: String?
    var retryAfterSeconds: Int?

    var description: String { "\(status.code) \(type): \(message)" }

    static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", code: nil, param: param)
    }

    static func notFound(_ message: String, code: String = "not_found") -> APIError {
        APIError(status: .notFound, message: message, type: "invalid_request_error", code: code)
    }

    static let unauthorized = APIError(status: .unauthorized, message: "incorrect or missing API key: send `Authorization: Bearer <key>`",
                                       type: "invalid_request_error", code: "invalid_api_key")

    static func tooLarge(_ limit: Int) -> APIError {
        APIError(status: .contentTooLarge, message: "the request body is over the server's limit of \(limit) bytes",
                 type: "invalid_request_error", code: "request_too_large")
    }

    static let requestTimeout = APIError(status: .requestTimeout, message: "the request was not received in time",
                                         type: "invalid_request_error", code: "request_timeout")

    /// Any error a handler or the framework threw, as the API reports it. Decoding errors say which
    /// field was wrong; framework errors keep their status; anything else is a 500 without internals.
    static func from(_ error: any Error) -> APIError {
        switch error {
        case let e as APIError: return e
        case let e as ServingError: return APIError(e)
        case let e as DecodingError: return .invalid("invalid request body: \(describe(e))")
        case let e as HTTPError:
            let status = e.status
            let type = status.code >= 500 ? "server_error" : "invalid_request_error"
            return APIError(status: status, message: e.body ?? status.reasonPhrase, type: type, code: nil)
        default:
            return APIError(status: .internalServerError, message: "internal error", type: "server_error", code: nil)
        }
    }

    func response() -> Response {
        let body = ErrorBody(error: .init(message: message, type: type, param: param, code: code))
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if let s = retryAfterSeconds { headers[.retryAfter] = String(s) }
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"error":{"message":"internal error","type":"server_error"}}"#.utf8)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }
}

extension APIError {
    /// The engine's refusals and failures, each with the status a client can act on.
    init(_ e: ServingError) {
        switch e {
        case .queueFull(let s):
            self.init(status: .tooManyRequests, message: e.description, type: "rate_limit_error", code: "queue_full",
                      retryAfterSeconds: s)
        case .unknownModel: self.init(status: .notFound, message: e.description, type: "invalid_request_error", code: "model_not_found",
                                      param: "model")
        case .emptyPrompt: self.init(status: .badRequest, message: e.description, type: "invalid_request_error", code: nil)
        case .contextExceeded: self.init(status: .badRequest, message: e.description, type: "invalid_request_error",
                                         code: "context_length_exceeded", param: "max_tokens")
        case .invalidMaxTokens: self.init(status: .badRequest, message: e.description, type: "invalid_request_error", code: nil,
                                          param: "max_tokens")
        case .timedOut: self.init(status: .requestTimeout, message: e.description, type: "timeout_error", code: "timeout")
        case .shuttingDown: self.init(status: .serviceUnavailable, message: e.description, type: "server_error", code: "shutting_down")
        case .adapterExists: self.init(status: .badRequest, message: e.description, type: "invalid_request_error", code: "adapter_exists")
        case .adapterNotLoaded: self.init(status: .notFound, message: e.description, type: "invalid_request_error",
                                          code: "adapter_not_found")
        case .adapterInvalid: self.init(status: .badRequest, message: e.description, type: "invalid_request_error", code: "invalid_adapter")
        }
    }
}

/// A decoding error in words a client can act on: which field, and what was wrong with it.
private func describe(_ e: DecodingError) -> String {
    func path(_ p: [any CodingKey]) -> String { p.isEmpty ? "body" : p.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".") }
    switch e {
    case .keyNotFound(let k, let c): return "missing field `\(path(c.codingPath + [k]))`"
    case .typeMismatch(_, let c): return "wrong type at `\(path(c.codingPath))`"
    case .valueNotFound(_, let c): return "missing value at `\(path(c.codingPath))`"
    case .dataCorrupted(let c): return c.codingPath.isEmpty ? "not valid JSON (or not UTF-8)" : "invalid value at `\(path(c.codingPath))`"
    @unknown default: return "invalid JSON"
    }
}
