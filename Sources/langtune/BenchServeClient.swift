import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// One streamed chat request as a load generator sees it: when the first text arrived, how many
/// tokens came, and whether it worked.
struct StreamedAnswer {
    var ok = false
    var status = 0
    var timeToFirstToken: Double?
    /// From the final `usage`, when the server sends one.
    var completionTokens = 0
    /// Events that carried text (about one per token); the count when no `usage` comes.
    var textEvents = 0
    var seconds = 0.0

    var tokens: Int { completionTokens > 0 ? completionTokens : textEvents }
}

/// A minimal blocking HTTP/1.1 client for OpenAI-style server-sent events on loopback: one connection
/// per request, chunked or close-delimited bodies. Blocking sockets on plain threads keep the load
/// generator's own overhead out of the server's timings (no shared event loop to queue behind).
enum SSEClient {
    /// A connected socket to `host:port`, or nil.
    static func connectTo(host: String, port: Int, timeout: Double) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { close(fd); return nil }
        return fd
    }

    /// The status code of `GET path`, nil when nothing answers.
    static func getStatus(host: String, port: Int, path: String) -> Int? {
        guard let fd = connectTo(host: host, port: port, timeout: 5) else { return nil }
        defer { close(fd) }
        let request = Array("GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n".utf8)
        guard send(fd, request, request.count, 0) == request.count else { return nil }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { return nil }
        return Int(String(decoding: buffer[0..<n], as: UTF8.self).split(separator: " ").dropFirst().first ?? "")
    }

    /// Sends one streamed chat request and reads its events to the end.
    static func streamChat(host: String, port: Int, body: Data, timeout: Double = 600) -> StreamedAnswer {
        var answer = StreamedAnswer()
        let start = Date()
        guard let fd = connectTo(host: host, port: port, timeout: timeout) else { return answer }
        defer { close(fd) }
        var request = Data("POST /v1/chat/completions HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nConnection: close\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
        request.append(body)
        let sent = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.count else { return answer }

        var raw = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var chunked = false
        var decoded = [UInt8]()   // the body with chunk framing removed
        var cursor = 0            // where chunk parsing resumes in `raw`
        var events = 0            // SSE events already handled in `decoded`
        var done = false
        while !done {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            raw.append(contentsOf: buffer[0..<n])
            if headerEnd == nil {
                guard let end = find(raw, [13, 10, 13, 10]) else { continue }
                headerEnd = end + 4
                let head = String(decoding: raw[0..<end], as: UTF8.self).lowercased()
                answer.status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
                chunked = head.contains("transfer-encoding: chunked")
                cursor = end + 4
                guard answer.status == 200 else { break }
            }
            if chunked {
                while true {
                    guard let lineEnd = find(raw, [13, 10], from: cursor) else { break }
                    let sizeText = String(decoding: raw[cursor..<lineEnd], as: UTF8.self).split(separator: ";").first ?? ""
                    guard let size = Int(sizeText.trimmingCharacters(in: .whitespaces), radix: 16) else { done = true; break }
                    if size == 0 { done = true; break }
                    guard raw.count >= lineEnd + 2 + size + 2 else { break }
                    decoded.append(contentsOf: raw[(lineEnd + 2)..<(lineEnd + 2 + size)])
                    cursor = lineEnd + 2 + size + 2
                }
            } else {
                decoded.append(contentsOf: raw[cursor...])
                cursor = raw.count
            }
            // Each complete event: `data: {...}\n\n`.
            while let sep = find(decoded, [10, 10], from: events) {
                let line = String(decoding: decoded[events..<sep], as: UTF8.self)
                events = sep + 2
                guard line.hasPrefix("data: ") else { continue }
                let payload = line.dropFirst(6)
                if payload == "[DONE]" { answer.ok = true; done = true; break }
                guard let obj = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any] else { continue }
                if let usage = obj["usage"] as? [String: Any], let n = (usage["completion_tokens"] as? NSNumber)?.intValue {
                    answer.completionTokens = n
                }
                let choices = obj["choices"] as? [[String: Any]] ?? []
                if let delta = choices.first?["delta"] as? [String: Any], let text = delta["content"] as? String, !text.isEmpty {
                    if answer.timeToFirstToken == nil { answer.timeToFirstToken = Date().timeIntervalSince(start) }
                    answer.textEvents += 1
                }
            }
        }
        answer.seconds = Date().timeIntervalSince(start)
        return answer
    }

    private static func find(_ hay: [UInt8], _ needle: [UInt8], from: Int = 0) -> Int? {
        guard hay.count >= needle.count, from <= hay.count - needle.count else { return nil }
        var i = from
        while i <= hay.count - needle.count {
            if hay[i] == needle[0] && Array(hay[i..<(i + needle.count)]) == needle { return i }
            i += 1
        }
        return nil
    }
}
