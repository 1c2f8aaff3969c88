/// Methods of Python built-in types that templates call (`content.strip()`,
/// `message.get('x')`, `d.items()`), bound to their receiver.
///
/// The immutable sandbox forbids methods that modify lists and dicts; accessing
/// one yields an undefined value that fails when called.
enum PyMethods {
    static let pyStrMethods: Set<String> = [
        "capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs", "find", "format",
        "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
        "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower",
        "lstrip", "maketrans", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex",
        "rjust", "rpartition", "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase",
        "title", "translate", "upper", "zfill",
    ]
    static let unsafeListMethods: Set<String> = ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"]
    static let unsafeDictMethods: Set<String> = ["clear", "pop", "popitem", "setdefault", "update"]

    static func method(_ name: String, _ body: @escaping (JArgs) throws -> JValue) -> JValue {
        .callable(JCallable(name, body))
    }

    static func lookup(_ obj: JValue, _ name: String) throws -> JValue? {
        switch obj {
        case .string(let s): return stringMethod(s, name)
        case .dict(let d): return dictMethod(d, name)
        case .list(let a):
            if unsafeListMethods.contains(name) { return .undef("access to attribute '\(name)' of 'list' object is unsafe.") }
            return sequenceMethod(a, name, type: "list")
        case .tuple(let a): return sequenceMethod(a, name, type: "tuple")
        default: return nil
        }
    }

    private static func str(_ v: JValue?, _ what: String) throws -> String {
        guard case .string(let s)? = v else { throw JinjaFailure("\(what) must be str, not \(v?.typeName ?? "None")") }
        return s
    }

    private static func optionalStr(_ v: JValue?, _ what: String) throws -> String? {
        guard let v else { return nil }
        if case .none = v { return nil }
        return try str(v, what)
    }

    private static func int(_ v: JValue?, default d: Int) throws -> Int {
        guard let v else { return d }
        guard let i = v.integer else { throw JinjaFailure("'\(v.typeName)' object cannot be interpreted as an integer") }
        return i
    }

    /// Python's `startswith`/`endswith` accept a str or a tuple of str.
    private static func affixes(_ v: JValue?, _ method: String) throws -> [String] {
        switch v {
        case .string(let s)?: return [s]
        case .tuple(let items)?: return try items.map { try str($0, "\(method) first arg") }
        default:
            throw JinjaFailure("\(method) first arg must be str or a tuple of str, not \(v?.typeName ?? "None")")
        }
    }

    private static func stringMethod(_ s: String, _ name: String) -> JValue? {
        switch name {
        case "strip", "lstrip", "rstrip":
            return method(name) { args in
                let b = try args.bind(name, ["chars"], required: 0)
                let chars = try optionalStr(b[0], "\(name) arg")
                return .string(PyText.strip(s, chars: chars, left: name != "rstrip", right: name != "lstrip"))
            }
        case "split", "rsplit":
            return method(name) { args in
                let b = try args.bind(name, ["sep", "maxsplit"], required: 0)
                let sep = try optionalStr(b[0], "must be str or None")
                let maxsplit = try int(b[1], default: -1)
                let parts = name == "split" ? try PyText.split(s, sep: sep, maxsplit: maxsplit)
                    : try PyText.rsplit(s, sep: sep, maxsplit: maxsplit)
                return .list(parts.map { .string($0) })
            }
        case "splitlines":
            return method(name) { args in
                let b = try args.bind(name, ["keepends"], required: 0)
                return .list(PyText.splitlines(s, keepEnds: b[0]?.truthy ?? false).map { .string($0) })
            }
        case "startswith", "endswith":
            return method(name) { args in
                let b = try args.bind(name, ["prefix", "start", "end"], required: 1)
                if b[1] != nil || b[2] != nil { throw JinjaFailure("\(name) with start/end is not supported") }
                let options = try affixes(b[0], name)
                return .bool(options.contains { name == "startswith" ? PyText.hasPrefix(s, $0) : PyText.hasSuffix(s, $0) })
            }
        case "upper": return method(name) { _ in .string(PyText.upper(s)) }
        case "lower": return method(name) { _ in .string(PyText.lower(s)) }
        case "title": return method(name) { _ in .string(PyText.title(s)) }
        case "capitalize": return method(name) { _ in .string(PyText.capitalize(s)) }
        case "replace":
            return method(name) { args in
                let b = try args.bind(name, ["old", "new", "count"], required: 2)
                return .string(PyText.replace(s, try str(b[0], "replace arg 1"), try str(b[1], "replace arg 2"),
                                              count: try int(b[2], default: -1)))
            }
        case "find", "rfind", "index", "rindex", "count":
            return method(name) { args in
                let b = try args.bind(name, ["sub", "start", "end"], required: 1)
                if b[1] != nil || b[2] != nil { throw JinjaFailure("\(name) with start/end is not supported") }
                let hay = PyText.scalars(s), needle = PyText.scalars(try str(b[0], "\(name) arg"))
                if name == "count" {
                    if needle.isEmpty { return .int(hay.count + 1) }
                    var n = 0, i = 0
                    while let j = PyText.find(hay, needle, from: i) { n += 1; i = j + needle.count }
                    return .int(n)
                }
                var found: Int?
                if name.hasPrefix("r") {
                    var i = 0
                    while let j = PyText.find(hay, needle, from: i) { found = j; i = j + 1 }
                } else {
                    found = PyText.find(hay, needle, from: 0)
                }
                if let found { return .int(found) }
                if name.hasSuffix("index") { throw JinjaFailure("substring not found") }
                return .int(-1)
            }
        case "removeprefix", "removesuffix":
            return method(name) { args in
                let b = try args.bind(name, ["affix"], required: 1)
                let affix = PyText.scalars(try str(b[0], "\(name) arg"))
                let a = PyText.scalars(s)
                if name == "removeprefix", a.starts(with: affix) { return .string(PyText.string(a.dropFirst(affix.count))) }
                if name == "removesuffix", !affix.isEmpty, a.reversed().starts(with: affix.reversed()) {
                    return .string(PyText.string(a.dropLast(affix.count)))
                }
                return .string(s)
            }
        case "join":
            return method(name) { args in
                let b = try args.bind(name, ["iterable"], required: 1)
                let parts = try JinjaInterpreter.iterate(b[0]!).enumerated().map { i, v -> String in
                    guard case .string(let p) = v else {
                        throw JinjaFailure("sequence item \(i): expected str instance, \(v.typeName) found")
                    }
                    return p
                }
                return .string(parts.joined(separator: s))
            }
        case "isspace", "isalpha", "isdigit", "isalnum", "islower", "isupper":
            return method(name) { _ in
                let cs = Array(s.unicodeScalars)
                switch name {
                case "isspace": return .bool(!cs.isEmpty && cs.allSatisfy(PyText.isSpace))
                case "isalpha": return .bool(!cs.isEmpty && cs.allSatisfy { $0.properties.isAlphabetic })
                case "isdigit": return .bool(!cs.isEmpty && cs.allSatisfy { $0.properties.numericType == .digit || $0.properties.numericType == .decimal })
                case "isalnum": return .bool(!cs.isEmpty && cs.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
                case "islower": return .bool(PyText.isCase(s, lower: true))
                default: return .bool(PyText.isCase(s, lower: false))
                }
            }
        default:
            if pyStrMethods.contains(name) {
                return method(name) { _ in throw JinjaFailure("str.\(name)() is not supported by this chat-template interpreter") }
            }
            return nil
        }
    }

    private static func dictMethod(_ d: JDict, _ name: String) -> JValue? {
        switch name {
        case "items": return method(name) { _ in .list(d.entries.map { .tuple([$0.key, $0.value]) }) }
        case "keys": return method(name) { _ in .list(d.keys) }
        case "values": return method(name) { _ in .list(d.values) }
        case "get":
            return method(name) { args in
                let b = try args.bind(name, ["key", "default"], required: 1)
                guard b[0]!.isHashable else { throw JinjaFailure("unhashable type: '\(b[0]!.typeName)'") }
                return d.get(b[0]!) ?? b[1] ?? JValue.none
            }
        case "copy": return method(name) { _ in .dict(d) }
        default:
            if unsafeDictMethods.contains(name) { return .undef("access to attribute '\(name)' of 'dict' object is unsafe.") }
            if name == "fromkeys" {
                return method(name) { _ in throw JinjaFailure("dict.fromkeys() is not supported by this chat-template interpreter") }
            }
            return nil
        }
    }

    private static func sequenceMethod(_ a: [JValue], _ name: String, type: String) -> JValue? {
        switch name {
        case "count":
            return method(name) { args in
                let b = try args.bind(name, ["value"], required: 1)
                return .int(a.filter { JValue.pyEqual($0, b[0]!) }.count)
            }
        case "index":
            return method(name) { args in
                let b = try args.bind(name, ["value"], required: 1)
                guard let i = a.firstIndex(where: { JValue.pyEqual($0, b[0]!) }) else {
                    throw JinjaFailure("\(b[0]!.pyRepr) is not in \(type)")
                }
                return .int(i)
            }
        case "copy" where type == "list": return method(name) { _ in .list(a) }
        default: return nil
        }
    }
}
