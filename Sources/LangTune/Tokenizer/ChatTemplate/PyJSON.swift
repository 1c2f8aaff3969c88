/// `json.dumps` as transformers' `tojson` filter calls it
/// (`ensure_ascii=False` by default, optional `indent`, `separators`, `sort_keys`).
struct PyJSON {
    var ensureASCII = false
    /// nil: single line. Otherwise the per-level indent string.
    var indent: String?
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false

    func dumps(_ v: JValue) throws -> String {
        var out = ""
        try encode(v, level: 0, into: &out)
        return out
    }

    private func encode(_ v: JValue, level: Int, into out: inout String) throws {
        if level > 500 { throw JinjaFailure("maximum recursion depth exceeded while encoding a JSON object") }
        switch v {
        case .none: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .float(let d): out += PyJSON.float(d)
        case .string(let s): out += quote(s)
        case .list(let items), .tuple(let items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            let (first, separator, close) = layout(level)
            out += first
            for (i, item) in items.enumerated() {
                if i > 0 { out += separator }
                try encode(item, level: level + 1, into: &out)
            }
            out += close + "]"
        case .dict(let d):
            if d.isEmpty { out += "{}"; return }
            var entries = d.entries
            if sortKeys {
                entries = try PySort.sorted(entries) { try JValue.pyLess($0.key, $1.key) }
            }
            out += "{"
            let (first, separator, close) = layout(level)
            out += first
            for (i, e) in entries.enumerated() {
                if i > 0 { out += separator }
                out += quote(try key(e.key))
                out += keySeparator
                try encode(e.value, level: level + 1, into: &out)
            }
            out += close + "}"
        default:
            throw JinjaFailure("Object of type \(v.typeName) is not JSON serializable")
        }
    }

    private func layout(_ level: Int) -> (String, String, String) {
        guard let indent else { return ("", itemSeparator, "") }
        let inner = "\n" + String(repeating: indent, count: level + 1)
        return (inner, itemSeparator + inner, "\n" + String(repeating: indent, count: level))
    }

    private func key(_ k: JValue) throws -> String {
        switch k {
        case .string(let s): return s
        case .int(let i): return String(i)
        case .float(let d): return PyJSON.float(d)
        case .bool(let b): return b ? "true" : "false"
        case .none: return "null"
        default: throw JinjaFailure("keys must be str, int, float, bool or None, not \(k.typeName)")
        }
    }

    static func float(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return PyText.floatRepr(d)
    }

    private func quote(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                    if c.value > 0xFFFF {
                        let v = c.value - 0x10000
                        out += "\\u" + PyText.hex(0xD800 | (v >> 10), width: 4)
                        out += "\\u" + PyText.hex(0xDC00 | (v & 0x3FF), width: 4)
                    } else {
                        out += "\\u" + PyText.hex(c.value, width: 4)
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }
}

/// A stable merge sort with a throwing comparator (Python's sort is stable and
/// comparisons may raise TypeError).
enum PySort {
    static func sorted<T>(_ items: [T], by less: (T, T) throws -> Bool) throws -> [T] {
        if items.count < 2 { return items }
        let mid = items.count / 2
        let left = try sorted(Array(items[..<mid]), by: less)
        let right = try sorted(Array(items[mid...]), by: less)
        var out: [T] = []
        out.reserveCapacity(items.count)
        var i = 0, j = 0
        while i < left.count && j < right.count {
            if try less(right[j], left[i]) { out.append(right[j]); j += 1 } else { out.append(left[i]); i += 1 }
        }
        out += left[i...]
        out += right[j...]
        return out
    }
}
