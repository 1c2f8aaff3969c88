import Foundation
import Hummingbird

/// Server-sent events as OpenAI streams them: `data: <json>` blocks, the last one `data: [DONE]`.
enum ServerEvents {
    static let headers: HTTPFields = [.contentType: "text/event-stream", .cacheControl: "no-cache"]

    static func data<T: Encodable>(_ value: T) -> ByteBuffer {
        let json = (try? JSONEncoder().encode(value)) ?? Data("{}".utf8)
        var b = ByteBuffer(string: "data: ")
        b.writeBytes(json)
        b.writeString("\n\n")
        return b
    }

    static let done = ByteBuffer(string: "data: [DONE]\n\n")
}
