import Foundation

/// jinja2's built-in filters that chat templates use, plus transformers' `tojson`.
enum JinjaFilters {
    static let names: Set<String> = [
        "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "first", "float", "indent", "int",
        "items", "join", "last", "length", "list", "lower", "map", "max", "min", "reject", "rejectattr",
        "replace", "reverse", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
        "unique", "upper", "wordcount",
    ]

    static func apply(_ name: String, _ value: JValue, _ args: JArgs, _ interp: JinjaInterpreter) throws -> JValue {
        func bind(_ names: [String], required: Int = 0) throws -> [JValue?] {
            try args.bind(name, names, required: required)
        }
        switch name {
        case "abs":
            _ = try bind([])
            switch value {
            case .int(let i):
                guard i != Int.min else { throw JinjaFailure("integer overflow") }
                return .int(abs(i))
            case .bool(let b): return .int(b ? 1 : 0)
            case .float(let d): return .float(Swift.abs(d))
            case .undefined: throw undefinedFailure(value)
            default: throw JinjaFailure("bad operand type for abs(): '\(value.typeName)'")
            }
        case "attr":
            let b = try bind(["name"], required: 1)
            guard case .string(let attr) = b[0]! else { throw JinjaFailure("attribute name must be string") }
            // Python attributes only: unlike `x.name`, no fallback to `x[name]`.
            if value.isUndefined { throw undefinedFailure(value) }
            if let method = try PyMethods.lookup(value, attr) { return method }
            if case .namespace(let ns) = value, let v = ns.attrs.get(attr) { return v }
            if case .loop(let l) = value, let v = JinjaInterpreter.loopAttribute(l, attr) { return v }
            return .undef("'\(JinjaInterpreter.objectDescription(value))' has no attribute '\(attr)'")
        case "capitalize":
            _ = try bind([])
            return .string(PyText.capitalize(value.pyStr))
        case "count", "length":
            _ = try bind([])
            return .int(try length(value))
        case "d", "default":
            let b = try bind(["default_value", "boolean"])
            let fallback = b[0] ?? .string("")
            if value.isUndefined || ((b[1]?.truthy ?? false) && !value.truthy) { return fallback }
            return value
        case "dictsort":
            let b = try bind(["case_sensitive", "by", "reverse"])
            if value.isUndefined { throw undefinedFailure(value) }
            guard case .dict(let d) = value else { throw JinjaFailure("'\(value.typeName)' object has no attribute 'items'") }
            let caseSensitive = b[0]?.truthy ?? false
            let by = b[1]?.pyStr ?? "key"
            guard by == "key" || by == "value" else { throw JinjaFailure("You can only sort by either \"key\" or \"value\"") }
            var items = try PySort.sorted(d.entries) {
                let x = by == "key" ? $0.key : $0.value, y = by == "key" ? $1.key : $1.value
                return try JValue.pyLess(foldCase(x, caseSensitive), foldCase(y, caseSensitive))
            }
            if b[2]?.truthy ?? false { items = try reverseStable(d.entries, caseSensitive: caseSensitive, by: by) }
            return .list(items.map { .tuple([$0.key, $0.value]) })
        case "first":
            _ = try bind([])
            if case .iterator(let it) = value { return try it.next() ?? .undef("No first item, sequence was empty.") }
            return try JinjaInterpreter.iterate(value).first ?? .undef("No first item, sequence was empty.")
        case "last":
            _ = try bind([])
            if case .iterator = value { throw JinjaFailure("'\(value.typeName)' object is not reversible") }
            return try JinjaInterpreter.iterate(value).last ?? .undef("No last item, sequence was empty.")
        case "float":
            let b = try bind(["default"])
            if value.isUndefined { throw undefinedFailure(value) }
            return pyFloat(value) ?? b[0] ?? .float(0)
        case "int":
            let b = try bind(["default", "base"])
            if value.isUndefined { throw undefinedFailure(value) }
            let base = b[1]?.integer ?? 10
            return try pyInt(value, base: base) ?? b[0] ?? .int(0)
        case "indent":
            let b = try bind(["width", "first", "blank"])
            if value.isUndefined { throw undefinedFailure(value) }
            guard case .string(let text0) = value else {
                throw JinjaFailure("unsupported operand type(s) for +=: '\(value.typeName)' and 'str'")
            }
            let indention: String
            switch b[0] {
            case .string(let s)?: indention = s
            case let v?:
                guard let w = v.integer else { throw JinjaFailure("indent width must be an int or a str") }
                indention = String(repeating: " ", count: max(0, w))
            case nil: indention = "    "
            }
            let text = text0 + "\n"
            let lines = PyText.splitlines(text, keepEnds: false)
            var rv: String
            if b[2]?.truthy ?? false {
                rv = lines.joined(separator: "\n" + indention)
            } else {
                rv = lines.first ?? ""
                if lines.count > 1 {
                    rv += "\n" + lines.dropFirst().map { $0.isEmpty ? $0 : indention + $0 }.joined(separator: "\n")
                }
            }
            if b[1]?.truthy ?? false { rv = indention + rv }
            return .string(rv)
        case "items":
            _ = try bind([])
            return lazy("do_items") {
                switch value {
                case .undefined: return []
                case .dict(let d): return d.entries.map { .tuple([$0.key, $0.value]) }
                default: throw JinjaFailure("Can only get item pairs from a mapping.")
                }
            }
        case "join":
            let b = try bind(["d", "attribute"])
            var items = try JinjaInterpreter.iterate(value)
            if let attribute = b[1], !isNone(attribute) {
                items = try items.map { try attributeGetter(attribute, $0) }
            }
            return .string(items.map(\.pyStr).joined(separator: b[0]?.pyStr ?? ""))
        case "list":
            _ = try bind([])
            return .list(try JinjaInterpreter.iterate(value))
        case "lower":
            _ = try bind([])
            return .string(PyText.lower(value.pyStr))
        case "upper":
            _ = try bind([])
            return .string(PyText.upper(value.pyStr))
        case "title":
            _ = try bind([])
            return .string(PyText.jinjaTitle(value.pyStr))
        case "map":
            let items = { try JinjaInterpreter.iterate(value) }
            if args.positional.isEmpty, let attribute = args.keyword.first(where: { $0.0 == "attribute" })?.1 {
                let fallback = args.keyword.first(where: { $0.0 == "default" })?.1
                for (k, _) in args.keyword where k != "attribute" && k != "default" {
                    throw JinjaFailure("Unexpected keyword argument '\(k)'")
                }
                return lazy("sync_do_map") {
                    try items().map { item in
                        let v = try attributeGetter(attribute, item)
                        if let fallback, v.isUndefined { return fallback }
                        return v
                    }
                }
            }
            guard case .string(let filterName)? = args.positional.first else { throw JinjaFailure("map requires a filter argument") }
            guard names.contains(filterName) else { throw JinjaFailure("No filter named '\(filterName)'.") }
            let rest = JArgs(positional: Array(args.positional.dropFirst()), keyword: args.keyword)
            return lazy("sync_do_map") { try items().map { try apply(filterName, $0, rest, interp) } }
        case "max", "min":
            let b = try bind(["case_sensitive", "attribute"])
            let caseSensitive = b[0]?.truthy ?? false
            var keyed = try JinjaInterpreter.iterate(value).map { item -> (JValue, JValue) in
                let k = try b[1].map { isNone($0) ? item : try attributeGetter($0, item) } ?? item
                return (item, foldCase(k, caseSensitive))
            }
            guard var best = keyed.first else { return .undef("No aggregated item, sequence was empty.") }
            keyed.removeFirst()
            for candidate in keyed {
                let better = name == "max" ? try JValue.pyLess(best.1, candidate.1) : try JValue.pyLess(candidate.1, best.1)
                if better { best = candidate }
            }
            return best.0
        case "select", "reject":
            let keep = name == "select"
            return lazy("select_or_reject") {
                try JinjaInterpreter.iterate(value).filter { item in
                    try selectTest(item, args.positional, args.keyword, interp) == keep
                }
            }
        case "selectattr", "rejectattr":
            guard let attribute = args.positional.first else { throw JinjaFailure("\(name) requires an attribute") }
            let keep = name == "selectattr"
            return lazy("select_or_reject") {
                try JinjaInterpreter.iterate(value).filter { item in
                    let v = try attributeGetter(attribute, item)
                    return try selectTest(v, Array(args.positional.dropFirst()), args.keyword, interp) == keep
                }
            }
        case "replace":
            let b = try bind(["old", "new", "count"], required: 2)
            let count = try b[2].map { v -> Int in
                if isNone(v) { return -1 }
                guard let i = v.integer else { throw JinjaFailure("'\(v.typeName)' object cannot be interpreted as an integer") }
                return i
            } ?? -1
            return .string(PyText.replace(value.pyStr, b[0]!.pyStr, b[1]!.pyStr, count: count))
        case "reverse":
            _ = try bind([])
            switch value {
            case .string(let s): return .string(PyText.string(s.unicodeScalars.reversed()))
            case .list(let a): return .iterator(JIterator("list_reverseiterator", origin: "") { a.reversed() })
            case .tuple(let a): return .iterator(JIterator("reversed", origin: "") { a.reversed() })
            case .dict(let d): return .iterator(JIterator("dict_reversekeyiterator", origin: "") { d.keys.reversed() })
            case .undefined: return .iterator(JIterator("reversed", origin: "") { [] })
            default:
                // jinja2 falls back to `list(value)` reversed.
                return .list(try JinjaInterpreter.iterate(value).reversed())
            }
        case "sort":
            let b = try bind(["reverse", "case_sensitive", "attribute"])
            let caseSensitive = b[1]?.truthy ?? false
            let items = try JinjaInterpreter.iterate(value)
            let keyed = try items.map { item -> (JValue, JValue) in
                let k = try b[2].map { isNone($0) ? item : try attributeGetter($0, item) } ?? item
                return (item, foldCase(k, caseSensitive))
            }
            let descending = b[0]?.truthy ?? false
            let sorted = try PySort.sorted(keyed) { descending ? try JValue.pyLess($1.1, $0.1) : try JValue.pyLess($0.1, $1.1) }
            return .list(sorted.map(\.0))
        case "string":
            _ = try bind([])
            return .string(value.pyStr)
        case "sum":
            let b = try bind(["attribute", "start"])
            var total = b[1] ?? .int(0)
            for item in try JinjaInterpreter.iterate(value) {
                let v = try b[0].map { isNone($0) ? item : try attributeGetter($0, item) } ?? item
                total = try PyOps.binary(.add, total, v)
            }
            return total
        case "tojson":
            let b = try bind(["ensure_ascii", "indent", "separators", "sort_keys"])
            var json = PyJSON()
            json.ensureASCII = b[0]?.truthy ?? false
            if let indent = b[1], !isNone(indent) {
                if case .string(let s) = indent {
                    json.indent = s
                } else if let w = indent.integer {
                    json.indent = String(repeating: " ", count: max(0, w))
                } else {
                    throw JinjaFailure("indent must be an int or a str")
                }
                json.itemSeparator = ","
            }
            if let separators = b[2], !isNone(separators) {
                let parts = try JinjaInterpreter.iterate(separators)
                guard parts.count == 2, case .string(let item) = parts[0], case .string(let key) = parts[1] else {
                    throw JinjaFailure("separators must be a pair of strings")
                }
                json.itemSeparator = item
                json.keySeparator = key
            }
            json.sortKeys = b[3]?.truthy ?? false
            return .string(try json.dumps(value))
        case "trim":
            let b = try bind(["chars"])
            let chars: String? = b[0].flatMap { isNone($0) ? nil : $0.pyStr }
            return .string(PyText.strip(value.pyStr, chars: chars, left: true, right: true))
        case "unique":
            let b = try bind(["case_sensitive", "attribute"])
            let caseSensitive = b[0]?.truthy ?? false
            return lazy("sync_do_unique") {
                var seen: [JValue] = []
                var out: [JValue] = []
                for item in try JinjaInterpreter.iterate(value) {
                    let k = foldCase(try b[1].map { isNone($0) ? item : try attributeGetter($0, item) } ?? item, caseSensitive)
                    guard k.isHashable else { throw JinjaFailure("unhashable type: '\(k.typeName)'") }
                    if !seen.contains(where: { JValue.pyEqual($0, k) }) {
                        seen.append(k)
                        out.append(item)
                    }
                }
                return out
            }
        case "wordcount":
            _ = try bind([])
            return .int(countWords(value.pyStr))
        default:
            throw JinjaFailure("No filter named '\(name)'.")
        }
    }

    /// jinja2's generator-returning filters.
    private static func lazy(_ function: String, _ produce: @escaping () throws -> [JValue]) -> JValue {
        .iterator(JIterator("generator", origin: function, produce))
    }

    static func isNone(_ v: JValue) -> Bool {
        if case .none = v { return true }
        return false
    }

    /// `len(value)`.
    static func length(_ v: JValue) throws -> Int {
        switch v {
        case .string(let s): return PyText.count(s)
        case .list(let a), .tuple(let a): return a.count
        case .dict(let d): return d.count
        case .undefined: return 0
        default: throw JinjaFailure("object of type '\(v.typeName)' has no len()")
        }
    }

    /// jinja2's `make_attrgetter`: dotted path, integer parts index, each step via getitem.
    static func attributeGetter(_ attribute: JValue, _ item: JValue) throws -> JValue {
        let parts: [JValue]
        switch attribute {
        case .string(let s):
            parts = s.split(separator: ".", omittingEmptySubsequences: false).map { p in
                if let i = Int(p), p.allSatisfy(\.isNumber) { return .int(i) }
                return .string(String(p))
            }
        case .int: parts = [attribute]
        default: parts = [attribute]
        }
        var v = item
        for p in parts { v = try JinjaInterpreter.getitem(v, p) }
        return v
    }

    /// `select`/`reject` helper: no test name means truthiness.
    private static func selectTest(_ v: JValue, _ positional: [JValue], _ keyword: [(String, JValue)], _ interp: JinjaInterpreter) throws -> Bool {
        guard let first = positional.first else { return v.truthy }
        guard case .string(let testName) = first else { throw JinjaFailure("test name must be a string") }
        guard JinjaTests.names.contains(testName) else { throw JinjaFailure("No test named '\(testName)'.") }
        return try JinjaTests.apply(testName, v, JArgs(positional: Array(positional.dropFirst()), keyword: keyword), interp)
    }

    /// jinja2's `ignore_case` postprocessor: lower-cases strings for comparison.
    private static func foldCase(_ v: JValue, _ caseSensitive: Bool) -> JValue {
        if !caseSensitive, case .string(let s) = v { return .string(PyText.lower(s)) }
        return v
    }

    /// `sorted(..., reverse=True)` keeps equal items in original order.
    private static func reverseStable(_ entries: [JDict.Entry], caseSensitive: Bool, by: String) throws -> [JDict.Entry] {
        try PySort.sorted(entries) {
            let x = by == "key" ? $0.key : $0.value, y = by == "key" ? $1.key : $1.value
            return try JValue.pyLess(foldCase(y, caseSensitive), foldCase(x, caseSensitive))
        }
    }

    private static func countWords(_ s: String) -> Int {
        // jinja2 counts `\w+` matches.
        var n = 0
        var inWord = false
        for c in s.unicodeScalars {
            let isWord = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
            if isWord && !inWord { n += 1 }
            inWord = isWord
        }
        return n
    }

    /// Python `float(value)`, or nil where it raises TypeError/ValueError.
    static func pyFloat(_ v: JValue) -> JValue? {
        switch v {
        case .int, .bool, .float: return v.number.map { .float($0) }
        case .string(let s):
            let t = PyText.strip(s, chars: nil, left: true, right: true)
            return parsePythonFloat(t).map { .float($0) }
        default: return nil
        }
    }

    private static func parsePythonFloat(_ t: String) -> Double? {
        let lowered = PyText.lower(t)
        var body = Substring(lowered)
        var sign = 1.0
        if body.first == "+" || body.first == "-" {
            if body.first == "-" { sign = -1 }
            body = body.dropFirst()
        }
        switch body {
        case "inf", "infinity": return sign * .infinity
        case "nan": return .nan
        default: break
        }
        // Digits with single underscores between them, optional fraction and exponent.
        let allowed = Set("0123456789._e+-")
        guard !body.isEmpty, body.allSatisfy({ allowed.contains($0) }), !body.contains("__"),
              !body.hasPrefix("_"), !body.hasSuffix("_"), !body.contains("._"), !body.contains("_.") else { return nil }
        guard let d = Double(String(body).replacingOccurrences(of: "_", with: "")) else { return nil }
        return sign * d
    }

    /// The digits of Python's `int(text, base)` after the sign; nil where Python raises ValueError.
    private static func parseIntBody(_ text: Substring, base requested: Int) -> Int? {
        guard requested == 0 || (2...36).contains(requested) else { return nil }
        var body = text
        var base = requested
        let lower = PyText.lower(String(body.prefix(2)))
        let prefixes: [String: Int] = ["0x": 16, "0o": 8, "0b": 2]
        if let b = prefixes[lower], requested == 0 || requested == b {
            base = b
            body = body.dropFirst(2)
            if body.first == "_" { body = body.dropFirst() }
        } else if requested == 0 {
            base = 10
            // Base 0 rejects leading zeros in non-zero decimals, as Python source does.
            if body.first == "0", body.contains(where: { $0 != "0" && $0 != "_" }) { return nil }
        }
        guard !body.isEmpty, !body.hasPrefix("_"), !body.hasSuffix("_"), !body.contains("__"),
              body.allSatisfy({ $0 == "_" || $0.isASCII && ($0.isLetter || $0.isNumber) }) else { return nil }
        return Int(String(body).replacingOccurrences(of: "_", with: ""), radix: base)
    }

    /// Python `int(value)` (with `base` for strings), falling back to `int(float(value))`
    /// as jinja2's `int` filter does; nil where both raise TypeError/ValueError.
    static func pyInt(_ v: JValue, base: Int) throws -> JValue? {
        switch v {
        case .int, .bool: return .int(v.integer!)
        case .float(let d):
            guard d.isFinite else { throw JinjaFailure("cannot convert float \(PyText.floatRepr(d)) to integer") }
            guard d.magnitude < 9.2e18 else { throw JinjaFailure("integer overflow") }
            return .int(Int(d))
        case .string(let s):
            let t = PyText.strip(s, chars: nil, left: true, right: true)
            var body = Substring(t)
            var negative = false
            if body.first == "+" || body.first == "-" {
                negative = body.first == "-"
                body = body.dropFirst()
            }
            if let magnitude = parseIntBody(body, base: base) {
                return .int(negative ? -magnitude : magnitude)
            }
            guard case .float(let d)? = pyFloat(v) else { return nil }
            return try pyInt(.float(d), base: base)
        default:
            return nil
        }
    }
}
