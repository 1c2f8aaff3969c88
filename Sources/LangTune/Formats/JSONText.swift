/// A JSON document to write, with object keys in the order given, so that the
/// files LangTune exports (adapter_config.json, config.json, tokenizer.json)
/// look like the ones Python's `json.dumps(indent=2)` writes.
enum JSONText {
    case null
    case bool(Bool)
    case int(Int)
    /// Written with Python's repr: shortest round-trip digits, `.0` on integral values.
    case double(Double)
    case string(String)
    case array([JSONText])
    case object([(String, JSONText)])

    /// An optional string, or `null`.
    static func string(_ s: String?) -> JSONText { s.map { .string($0) } ?? .null }

    /// Bytes of the document, pretty-printed with `indent` spaces (0: compact
    /// with `", "` and `": "` separators, as Python's default).
    func serialized(indent: Int = 2) -> [UInt8] {
        var out: [UInt8] = []
        write(to: &out, indent: indent, level: 0)
        out.append(0x0A)
        return out
    }

    private func newline(_ out: inout [UInt8], _ indent: Int, _ level: Int) {
        out.append(0x0A)
        out.append(contentsOf: repeatElement(0x20, count: indent * level))
    }

    private func write(to out: inout [UInt8], indent: Int, level: Int) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .int(let i): out.append(contentsOf: String(i).utf8)
        case .double(let d): out.append(contentsOf: JSONText.pythonRepr(d).utf8)
        case .string(let s): JSONText.appendQuoted(s, to: &out)
        case .array(let items):
            guard !items.isEmpty else { out.append(contentsOf: "[]".utf8); return }
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")); if indent == 0 { out.append(0x20) } }
                if indent > 0 { newline(&out, indent, level + 1) }
                item.write(to: &out, indent: indent, level: level + 1)
            }
            if indent > 0 { newline(&out, indent, level) }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            guard !members.isEmpty else { out.append(contentsOf: "{}".utf8); return }
            out.append(UInt8(ascii: "{"))
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")); if indent == 0 { out.append(0x20) } }
                if indent > 0 { newline(&out, indent, level + 1) }
                JSONText.appendQuoted(key, to: &out)
                out.append(contentsOf: ": ".utf8)
                value.write(to: &out, indent: indent, level: level + 1)
            }
            if indent > 0 { newline(&out, indent, level) }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Python's `repr(float)`: Swift's `description` already gives the shortest
    /// round-trip digits; Python spells exponents `1e-05` and keeps `.0`.
    static func pythonRepr(_ d: Double) -> String {
        guard d.isFinite else { return d.isNaN ? "NaN" : (d > 0 ? "Infinity" : "-Infinity") }
        var s = d.description
        if let e = s.firstIndex(of: "e") {
            var mantissa = String(s[..<e])
            var exponent = String(s[s.index(after: e)...])
            if mantissa.hasSuffix(".0") { mantissa.removeLast(2) }
            let negative = exponent.hasPrefix("-")
            if negative || exponent.hasPrefix("+") { exponent.removeFirst() }
            if exponent.count < 2 { exponent = "0" + exponent }
            s = mantissa + "e" + (negative ? "-" : "+") + exponent
        }
        return s
    }

    /// A JSON string literal; non-ASCII stays UTF-8 (as `ensure_ascii=False`).
    static func appendQuoted(_ s: String, to out: inout [UInt8]) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: out.append(contentsOf: [0x5C, 0x22])
            case 0x5C: out.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: out.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: out.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: out.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }
}

extension AtomicFileWriter {
    /// Writes `bytes` to `path` atomically.
    static func write(bytes: [UInt8], to path: String) throws {
        try write(to: path) { w in try w.write(bytes) }
    }
}
