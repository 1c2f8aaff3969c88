/// A JSON value handed to a template (tool schemas, documents, extra variables),
/// keeping object key order, which `tojson` output depends on.
public indirect enum TemplateJSON: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([TemplateJSON])
    case object([Member])

    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: TemplateJSON
        public init(_ key: String, _ value: TemplateJSON) {
            self.key = key
            self.value = value
        }
    }

    var jinjaValue: JValue {
        switch self {
        case .null: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .double(let d): return .float(d)
        case .string(let s): return .string(s)
        case .array(let a): return .list(a.map(\.jinjaValue))
        case .object(let members): return .dict(JDict(members.map { (.string($0.key), $0.value.jinjaValue) }))
        }
    }

    /// Parses JSON text (RFC 8259), preserving key order. Integers that fit `Int`
    /// stay integers, as Python's `json.loads` keeps them.
    public init(parsing text: String) throws {
        var parser = JSONTextParser(Array(text.utf8))
        self = try parser.parseDocument()
    }
}

/// The failure of `TemplateJSON(parsing:)`.
public struct TemplateJSONError: Error, CustomStringConvertible, Sendable {
    public let offset: Int
    public let problem: String
    public var description: String { "invalid JSON at byte \(offset): \(problem)" }
}

private struct JSONTextParser {
    let b: [UInt8]
    var i = 0
    var depth = 0
    init(_ bytes: [UInt8]) { b = bytes }

    func fail(_ problem: String) -> TemplateJSONError { TemplateJSONError(offset: i, problem: problem) }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func parseDocument() throws -> TemplateJSON {
        let v = try parseValue()
        skipSpace()
        if i != b.count { throw fail("trailing characters") }
        return v
    }

    mutating func literal(_ word: String, _ value: TemplateJSON) throws -> TemplateJSON {
        let w = Array(word.utf8)
        guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else { throw fail("unexpected token") }
        i += w.count
        return value
    }

    mutating func parseValue() throws -> TemplateJSON {
        skipSpace()
        guard i < b.count else { throw fail("unexpected end of input") }
        switch b[i] {
        case UInt8(ascii: "n"): return try literal("null", .null)
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "["):
            depth += 1
            defer { depth -= 1 }
            if depth > 512 { throw fail("nesting too deep") }
            i += 1
            var items: [TemplateJSON] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                items.append(try parseValue())
                skipSpace()
                guard i < b.count else { throw fail("unterminated array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "{"):
            depth += 1
            defer { depth -= 1 }
            if depth > 512 { throw fail("nesting too deep") }
            i += 1
            var members: [TemplateJSON.Member] = []
            skipSpace()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipSpace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                let value = try parseValue()
                // Python's json.loads keeps the last value of a repeated key, in the first key's position.
                if let k = members.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) {
                    members[k].value = value
                } else {
                    members.append(.init(key, value))
                }
                skipSpace()
                guard i < b.count else { throw fail("unterminated object") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        default:
            return try parseNumber()
        }
    }

    mutating func parseNumber() throws -> TemplateJSON {
        let start = i
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        func digits() -> Int {
            let s = i
            while i < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) { i += 1 }
            return i - s
        }
        guard digits() > 0 else { throw fail("invalid number") }
        var isFloat = false
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            isFloat = true
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            isFloat = true
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        let text = String(decoding: b[start..<i], as: UTF8.self)
        if !isFloat, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("invalid number") }
        return .double(d)
    }

    mutating func parseString() throws -> String {
        i += 1
        var out = String.UnicodeScalarView()
        var run = i
        func flush(_ end: Int) { out.append(contentsOf: String(decoding: b[run..<end], as: UTF8.self).unicodeScalars) }
        while i < b.count {
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                flush(i)
                i += 1
                return String(out)
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            flush(i)
            i += 1
            guard i < b.count else { throw fail("unterminated string") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append("\"")
            case UInt8(ascii: "\\"): out.append("\\")
            case UInt8(ascii: "/"): out.append("/")
            case UInt8(ascii: "b"): out.append("\u{08}")
            case UInt8(ascii: "f"): out.append("\u{0C}")
            case UInt8(ascii: "n"): out.append("\n")
            case UInt8(ascii: "r"): out.append("\r")
            case UInt8(ascii: "t"): out.append("\t")
            case UInt8(ascii: "u"):
                var v = try hex4()
                if (0xD800...0xDBFF).contains(v), i + 1 < b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    let save = i
                    i += 2
                    let low = try hex4()
                    if (0xDC00...0xDFFF).contains(low) {
                        v = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00)
                    } else {
                        i = save
                    }
                }
                guard let sc = Unicode.Scalar(v) else { throw fail("lone surrogate in string") }
                out.append(sc)
            default: throw fail("invalid escape")
            }
            run = i
        }
        throw fail("unterminated string")
    }

    mutating func hex4() throws -> UInt32 {
        guard i + 4 <= b.count,
              b[i..<(i + 4)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
              let v = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16) else {
            throw fail("invalid \\u escape")
        }
        i += 4
        return v
    }
}
