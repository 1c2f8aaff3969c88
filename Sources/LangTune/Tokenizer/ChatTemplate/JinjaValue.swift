/// A run-time value in the template interpreter, modelled on the Python objects
/// jinja2 would hold: the semantics (truthiness, `==`, `str()`) are Python's.
enum JValue {
    case undefined(JUndefined)
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)
    case list([JValue])
    case tuple([JValue])
    case dict(JDict)
    case namespace(JNamespace)
    case callable(JCallable)
    case loop(JLoop)
    /// A one-shot Python iterator (what `select`, `map`, `unique`, `reverse`… return).
    case iterator(JIterator)

    static func undef(_ hint: String) -> JValue { .undefined(JUndefined(hint: hint)) }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// Python's type name, for error messages.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .float: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .callable: return "function"
        case .loop: return "LoopContext"
        case .iterator(let it): return it.typeName
        }
    }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .float(let d): return d != 0
        case .string(let s): return !s.isEmpty
        case .list(let a), .tuple(let a): return !a.isEmpty
        case .dict(let d): return !d.isEmpty
        case .namespace, .callable, .loop, .iterator: return true  // iterators are truthy even when empty
        }
    }

    /// Numeric view (bool is an int in Python).
    var number: Double? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return Double(i)
        case .float(let d): return d
        default: return nil
        }
    }

    var integer: Int? {
        switch self {
        case .bool(let b): return b ? 1 : 0
        case .int(let i): return i
        default: return nil
        }
    }

    /// `str(value)` as jinja2 prints it; undefined prints as the empty string.
    var pyStr: String {
        switch self {
        case .undefined: return ""
        case .string(let s): return s
        default: return pyRepr
        }
    }

    /// `repr(value)`.
    var pyRepr: String { repr(depth: 0) }

    /// Python raises RecursionError on absurdly deep nesting; we print `...` there
    /// instead of overflowing the stack.
    private func repr(depth: Int) -> String {
        if depth > 500 { return "..." }
        let pyRepr = { (v: JValue) in v.repr(depth: depth + 1) }
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .float(let d): return PyText.floatRepr(d)
        case .string(let s): return PyText.repr(s)
        case .list(let a): return "[" + a.map(pyRepr).joined(separator: ", ") + "]"
        case .tuple(let a):
            if a.count == 1 { return "(" + pyRepr(a[0]) + ",)" }
            return "(" + a.map(pyRepr).joined(separator: ", ") + ")"
        case .dict(let d):
            return "{" + d.entries.map { pyRepr($0.key) + ": " + pyRepr($0.value) }.joined(separator: ", ") + "}"
        case .namespace(let ns):
            return "<Namespace {" + ns.attrs.entries.map { pyRepr($0.key) + ": " + pyRepr($0.value) }.joined(separator: ", ") + "}>"
        case .callable(let c): return "<function \(c.name)>"
        case .loop(let l): return "<LoopContext \(l.index0 + 1)/\(l.items.count)>"
        case .iterator(let it): return "<\(it.typeName) object \(it.origin)>"
        }
    }

    /// Python `==`.
    static func pyEqual(_ a: JValue, _ b: JValue) -> Bool {
        switch (a, b) {
        case (.undefined, .undefined): return true
        case (.undefined, _), (_, .undefined): return false
        case (.none, .none): return true
        case let (.string(x), .string(y)): return PyText.equal(x, y)
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            return x.count == y.count && zip(x, y).allSatisfy { pyEqual($0, $1) }
        case let (.dict(x), .dict(y)):
            guard x.count == y.count else { return false }
            for e in x.entries {
                guard let v = y.get(e.key), pyEqual(e.value, v) else { return false }
            }
            return true
        case let (.namespace(x), .namespace(y)): return x === y
        case let (.callable(x), .callable(y)): return x === y
        case let (.loop(x), .loop(y)): return x === y
        case let (.iterator(x), .iterator(y)): return x === y
        default:
            if let x = a.integer, let y = b.integer { return x == y }
            if let x = a.number, let y = b.number { return x == y }
            return false
        }
    }

    /// Python `<`, throwing TypeError for unorderable pairs.
    static func pyLess(_ a: JValue, _ b: JValue, op: String = "<") throws -> Bool {
        switch (a, b) {
        case let (.string(x), .string(y)): return PyText.less(x, y)
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            for (p, q) in zip(x, y) where !pyEqual(p, q) { return try pyLess(p, q, op: op) }
            return x.count < y.count
        default:
            if let x = a.integer, let y = b.integer { return x < y }
            if let x = a.number, let y = b.number { return x < y }
            if a.isUndefined || b.isUndefined { throw undefinedFailure(a.isUndefined ? a : b) }
            throw JinjaFailure("'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    /// Whether a value can be a dict key (Python hashability).
    var isHashable: Bool {
        switch self {
        case .none, .bool, .int, .float, .string, .namespace, .callable, .loop, .iterator: return true
        case .tuple(let a): return a.allSatisfy(\.isHashable)
        case .undefined: return true
        case .list, .dict: return false
        }
    }
}

/// The failure raised when an undefined value is used in an operation jinja2's
/// default `Undefined` does not support.
func undefinedFailure(_ v: JValue) -> JinjaFailure {
    if case .undefined(let u) = v { return JinjaFailure(u.hint) }
    return JinjaFailure("value is undefined")
}

/// jinja2's default `Undefined`: prints empty, is falsy, iterates as empty, and
/// fails on arithmetic, attribute access and calls with this hint.
struct JUndefined {
    let hint: String
}

/// An insertion-ordered Python dict. Lookups use Python equality so that `1`,
/// `1.0` and `True` are the same key, and strings compare by code point.
struct JDict {
    struct Entry {
        let key: JValue
        var value: JValue
    }
    private(set) var entries: [Entry] = []
    private var stringIndex: [[UInt8]: Int] = [:]

    init() {}
    init(_ pairs: [(JValue, JValue)]) { for (k, v) in pairs { set(k, v) } }

    var count: Int { entries.count }
    var isEmpty: Bool { entries.isEmpty }
    var keys: [JValue] { entries.map(\.key) }
    var values: [JValue] { entries.map(\.value) }

    private func index(of key: JValue) -> Int? {
        if case .string(let s) = key { return stringIndex[Array(s.utf8)] }
        return entries.firstIndex { JValue.pyEqual($0.key, key) }
    }

    func get(_ key: JValue) -> JValue? { index(of: key).map { entries[$0].value } }
    func get(_ key: String) -> JValue? { get(.string(key)) }

    mutating func set(_ key: JValue, _ value: JValue) {
        if let i = index(of: key) {
            entries[i].value = value
        } else {
            if case .string(let s) = key { stringIndex[Array(s.utf8)] = entries.count }
            entries.append(Entry(key: key, value: value))
        }
    }
}

/// `namespace(...)`: the one mutable object templates may change (`{% set ns.x = … %}`).
final class JNamespace {
    var attrs = JDict()
}

/// A callable: builtin global, bound method, macro or `loop.cycle`.
final class JCallable {
    let name: String
    let call: (JArgs) throws -> JValue
    init(_ name: String, _ call: @escaping (JArgs) throws -> JValue) {
        self.name = name
        self.call = call
    }
}

/// Arguments of a call, bound Python-style by `bind`.
struct JArgs {
    var positional: [JValue]
    var keyword: [(String, JValue)]

    /// Whether the call passes parameter `name` (at position `index`).
    func binds(_ name: String, at index: Int) -> Bool {
        index < positional.count || keyword.contains { $0.0 == name }
    }

    /// Binds to a Python signature: `names` in order, `defaults` for the optional
    /// trailing parameters. Throws TypeError-like failures on surplus or unknown arguments.
    func bind(_ function: String, _ names: [String], required: Int) throws -> [JValue?] {
        var out = [JValue?](repeating: nil, count: names.count)
        if positional.count > names.count {
            throw JinjaFailure("\(function)() takes at most \(names.count) arguments (\(positional.count) given)")
        }
        for (i, v) in positional.enumerated() { out[i] = v }
        for (k, v) in keyword {
            guard let i = names.firstIndex(of: k) else {
                throw JinjaFailure("\(function)() got an unexpected keyword argument '\(k)'")
            }
            if out[i] != nil { throw JinjaFailure("\(function)() got multiple values for argument '\(k)'") }
            out[i] = v
        }
        for i in 0..<required where out[i] == nil {
            throw JinjaFailure("\(function)() missing required argument: '\(names[i])'")
        }
        return out
    }
}

/// The `loop` variable of a `{% for %}`.
final class JLoop {
    let items: [JValue]
    var index0 = 0
    let depth0: Int
    var lastChangedValue: JValue?
    init(items: [JValue], depth0: Int) {
        self.items = items
        self.depth0 = depth0
    }
}

/// A Python generator or iterator. Its items are produced on first use (so a failure
/// surfaces only if the template consumes it, as with jinja2's lazy filters) and can be
/// consumed once.
final class JIterator {
    let typeName: String
    let origin: String
    private var produce: (() throws -> [JValue])?
    private var items: [JValue] = []
    private var position = 0

    init(_ typeName: String, origin: String, _ produce: @escaping () throws -> [JValue]) {
        self.typeName = typeName
        self.origin = origin
        self.produce = produce
    }

    private func materialize() throws {
        if let produce {
            self.produce = nil
            items = try produce()
        }
    }

    /// The remaining items; the iterator is exhausted afterwards.
    func drain() throws -> [JValue] {
        try materialize()
        let rest = Array(items[position...])
        position = items.count
        return rest
    }

    /// `next(it)`, or nil when exhausted.
    func next() throws -> JValue? {
        try materialize()
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }
}
