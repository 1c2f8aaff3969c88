import Foundation

/// A variable scope. jinja2 gives each loop iteration, macro call and `with`
/// block a fresh scope whose lookups fall through to the enclosing one, while
/// `if` shares its parent's scope; assignments always go to the innermost scope.
final class JFrame {
    var vars: [String: JValue] = [:]
    let parent: JFrame?
    init(parent: JFrame?) { self.parent = parent }

    func lookup(_ name: String) -> JValue? {
        var frame: JFrame? = self
        while let f = frame {
            if let v = f.vars[name] { return v }
            frame = f.parent
        }
        return nil
    }
}

/// Evaluates a parsed template. One interpreter renders once; it is not shared.
final class JinjaInterpreter {
    enum Flow { case normal, breakLoop, continueLoop }

    /// Line of the node being evaluated, for run-time error messages.
    var line = 1
    let now: Date
    let timeZone: TimeZone
    private var callDepth = 0
    /// Macro scopes kept alive by their closures; released after rendering to break cycles.
    private var macroScopes: [MacroScope] = []
    static let maxCallDepth = 100
    /// jinja2's sandbox limit for `range()`.
    static let maxRange = 100_000
    /// Guard against templates that build absurdly large strings or lists.
    static let maxRepeat = 50_000_000

    final class MacroScope {
        var frame: JFrame?
        init(_ frame: JFrame) { self.frame = frame }
    }

    init(now: Date, timeZone: TimeZone) {
        self.now = now
        self.timeZone = timeZone
    }

    func releaseScopes() {
        for scope in macroScopes { scope.frame = nil }
        macroScopes.removeAll()
    }

    // MARK: globals

    func makeGlobals() -> JFrame {
        let g = JFrame(parent: nil)
        g.vars["range"] = .callable(JCallable("range") { args in try JinjaInterpreter.range(args) })
        g.vars["dict"] = .callable(JCallable("dict") { args in try JinjaInterpreter.makeDict(args) })
        g.vars["namespace"] = .callable(JCallable("namespace") { args in
            let ns = JNamespace()
            if case .dict(let d) = try JinjaInterpreter.makeDict(args) {
                for e in d.entries {
                    if case .string(let k) = e.key, k.hasPrefix("_") {
                        throw JinjaFailure("Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(PyText.repr(k)).")
                    }
                    ns.attrs.set(e.key, e.value)
                }
            }
            return .namespace(ns)
        })
        g.vars["raise_exception"] = .callable(JCallable("raise_exception") { args in
            let bound = try args.bind("raise_exception", ["message"], required: 1)
            throw ChatTemplateError.raised(message: bound[0]!.pyStr)
        })
        let now = self.now, timeZone = self.timeZone
        g.vars["strftime_now"] = .callable(JCallable("strftime_now") { args in
            let bound = try args.bind("strftime_now", ["format"], required: 1)
            guard case .string(let format) = bound[0]! else { throw JinjaFailure("strftime() argument 1 must be str") }
            return .string(Strftime.format(format, date: now, timeZone: timeZone))
        })
        return g
    }

    static func range(_ args: JArgs) throws -> JValue {
        if !args.keyword.isEmpty { throw JinjaFailure("range() takes no keyword arguments") }
        let ints = try args.positional.map { v -> Int in
            guard let i = v.integer else { throw JinjaFailure("'\(v.typeName)' object cannot be interpreted as an integer") }
            return i
        }
        var start = 0, stop = 0, step = 1
        switch ints.count {
        case 1: stop = ints[0]
        case 2: start = ints[0]; stop = ints[1]
        case 3: start = ints[0]; stop = ints[1]; step = ints[2]
        default: throw JinjaFailure("range expected 1 to 3 arguments, got \(ints.count)")
        }
        if step == 0 { throw JinjaFailure("range() arg 3 must not be zero") }
        var out: [JValue] = []
        var i = start
        while step > 0 ? i < stop : i > stop {
            if out.count >= maxRange { throw JinjaFailure("Range too big. The sandbox blocks ranges larger than MAX_RANGE (\(maxRange)).") }
            out.append(.int(i))
            let (next, overflow) = i.addingReportingOverflow(step)
            if overflow { break }
            i = next
        }
        return .list(out)
    }

    static func makeDict(_ args: JArgs) throws -> JValue {
        var d = JDict()
        if args.positional.count > 1 { throw JinjaFailure("dict expected at most 1 argument, got \(args.positional.count)") }
        if let first = args.positional.first {
            switch first {
            case .dict(let other): for e in other.entries { d.set(e.key, e.value) }
            case .list(let items), .tuple(let items):
                for item in items {
                    let pair = try iterate(item)
                    guard pair.count == 2 else { throw JinjaFailure("dictionary update sequence element has length \(pair.count); 2 is required") }
                    guard pair[0].isHashable else { throw JinjaFailure("unhashable type: '\(pair[0].typeName)'") }
                    d.set(pair[0], pair[1])
                }
            default: throw JinjaFailure("'\(first.typeName)' object is not iterable")
            }
        }
        for (k, v) in args.keyword { d.set(.string(k), v) }
        return .dict(d)
    }

    // MARK: statements

    /// A fresh scope for `block`, with the names jinja2 starts as undefined.
    func scope(_ block: JBlock, parent: JFrame) -> JFrame {
        let f = JFrame(parent: parent)
        for name in block.undefinedNames { f.vars[name] = .undef("'\(name)' is undefined") }
        return f
    }

    func execute(_ body: [JStmt], _ frame: JFrame, _ out: inout String) throws -> Flow {
        for stmt in body {
            let flow = try execute(stmt, frame, &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execute(_ stmt: JStmt, _ frame: JFrame, _ out: inout String) throws -> Flow {
        switch stmt {
        case .data(let text):
            out += text
        case .output(let e):
            out += try eval(e, frame).pyStr
        case let .ifChain(branches, otherwise):
            for branch in branches where try eval(branch.test, frame).truthy {
                return try execute(branch.body, frame, &out)
            }
            return try execute(otherwise, frame, &out)
        case let .forLoop(target, iterable, filter, body, otherwise, l):
            line = l
            var items = try JinjaInterpreter.iterate(try eval(iterable, frame))
            if let filter {
                items = try items.filter { item in
                    let f = JFrame(parent: frame)
                    try assign(target, item, f)
                    return try eval(filter, f).truthy
                }
            }
            if items.isEmpty {
                return try execute(otherwise.stmts, scope(otherwise, parent: frame), &out)
            }
            let loop = JLoop(items: items, depth0: 0)
            for (index, item) in items.enumerated() {
                loop.index0 = index
                let f = scope(body, parent: frame)
                f.vars["loop"] = .loop(loop)
                try assign(target, item, f)
                if try execute(body.stmts, f, &out) == .breakLoop { break }
            }
        case let .set(target, e, l):
            let value = try eval(e, frame)
            line = l
            try assign(target, value, frame)
        case let .setBlock(target, filters, body, l):
            var captured = ""
            _ = try execute(body.stmts, scope(body, parent: frame), &captured)
            var value = JValue.string(captured)
            for f in filters { value = try applyFilter(f.name, value, f.args, frame, line: f.line) }
            line = l
            try assign(target, value, frame)
        case .macro(let m):
            frame.vars[m.name] = .callable(makeMacro(m, frame))
        case let .with(assignments, body):
            let values = try assignments.map { try eval($0.value, frame) }
            let f = scope(body, parent: frame)
            for (a, value) in zip(assignments, values) { try assign(a.target, value, f) }
            return try execute(body.stmts, f, &out)
        case let .filterBlock(filters, body):
            var captured = ""
            let flow = try execute(body.stmts, scope(body, parent: frame), &captured)
            var value = JValue.string(captured)
            for f in filters { value = try applyFilter(f.name, value, f.args, frame, line: f.line) }
            out += value.pyStr
            return flow
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case .generation(let body):
            return try execute(body.stmts, scope(body, parent: frame), &out)
        }
        return .normal
    }

    func assign(_ target: JTarget, _ value: JValue, _ frame: JFrame) throws {
        switch target {
        case .name(let n):
            frame.vars[n] = value
        case .tuple(let targets):
            let items = try JinjaInterpreter.iterate(value, unpacking: true)
            if items.count < targets.count {
                throw JinjaFailure("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            if items.count > targets.count { throw JinjaFailure("too many values to unpack (expected \(targets.count))") }
            for (t, v) in zip(targets, items) { try assign(t, v, frame) }
        case let .namespaceAttr(name, attr):
            guard case .namespace(let ns)? = frame.lookup(name) else {
                throw JinjaFailure("cannot assign attribute on non-namespace object")
            }
            if attr.hasPrefix("_") {
                throw JinjaFailure("Chat templates cannot store underscore-prefixed attributes on a namespace, but got \(PyText.repr(attr)).")
            }
            ns.attrs.set(.string(attr), value)
        }
    }

    private func makeMacro(_ m: JMacro, _ frame: JFrame) -> JCallable {
        let scope = MacroScope(frame)
        macroScopes.append(scope)
        return JCallable(m.name) { [unowned self] args in
            guard let defining = scope.frame else { throw JinjaFailure("macro '\(m.name)' called after rendering ended") }
            let f = self.scope(m.body, parent: defining)
            var extra: [JValue] = []
            for (i, v) in args.positional.enumerated() {
                if i < m.params.count { f.vars[m.params[i]] = v } else { extra.append(v) }
            }
            if !extra.isEmpty && !m.usesVarargs {
                throw JinjaFailure("macro '\(m.name)' takes not more than \(m.params.count) argument(s)")
            }
            var kwargs = JDict()
            for (k, v) in args.keyword {
                if let i = m.params.firstIndex(of: k) {
                    if i < args.positional.count { throw JinjaFailure("macro '\(m.name)' got multiple values for argument '\(k)'") }
                    f.vars[k] = v
                } else if m.usesKwargs {
                    kwargs.set(.string(k), v)
                } else {
                    throw JinjaFailure("macro '\(m.name)' takes no keyword argument '\(k)'")
                }
            }
            let firstDefault = m.params.count - m.defaults.count
            for (i, p) in m.params.enumerated() where !args.binds(p, at: i) {
                if i >= firstDefault {
                    f.vars[p] = try self.eval(m.defaults[i - firstDefault], f)
                } else {
                    f.vars[p] = .undef("parameter '\(p)' was not provided")
                }
            }
            f.vars["varargs"] = .tuple(extra)
            f.vars["kwargs"] = .dict(kwargs)
            self.callDepth += 1
            defer { self.callDepth -= 1 }
            if self.callDepth > JinjaInterpreter.maxCallDepth { throw JinjaFailure("maximum macro recursion depth exceeded") }
            var captured = ""
            _ = try self.execute(m.body.stmts, f, &captured)
            return .string(captured)
        }
    }

    // MARK: expressions

    func eval(_ e: JExpr, _ frame: JFrame) throws -> JValue {
        line = e.line
        switch e.kind {
        case .literal(let l):
            return l.value
        case .name(let n):
            return frame.lookup(n) ?? .undef("'\(n)' is undefined")
        case .list(let items):
            return .list(try items.map { try eval($0, frame) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0, frame) })
        case .dict(let items):
            var d = JDict()
            for item in items {
                let k = try eval(item.key, frame)
                guard k.isHashable else { throw JinjaFailure("unhashable type: '\(k.typeName)'") }
                d.set(k, try eval(item.value, frame))
            }
            return .dict(d)
        case let .getattr(obj, name):
            let o = try eval(obj, frame)
            line = e.line
            return try JinjaInterpreter.getattr(o, name)
        case let .getitem(obj, key):
            let o = try eval(obj, frame)
            let k = try eval(key, frame)
            line = e.line
            return try JinjaInterpreter.getitem(o, k)
        case let .slice(obj, start, stop, step):
            let o = try eval(obj, frame)
            let a = try start.map { try eval($0, frame) }
            let b = try stop.map { try eval($0, frame) }
            let c = try step.map { try eval($0, frame) }
            line = e.line
            return try JinjaInterpreter.slice(o, a, b, c)
        case .negate(let x):
            let v = try eval(x, frame)
            switch v {
            case .int(let i):
                guard i != Int.min else { throw JinjaFailure("integer overflow") }
                return .int(-i)
            case .bool(let b): return .int(b ? -1 : 0)
            case .float(let d): return .float(-d)
            case .undefined: throw undefinedFailure(v)
            default: throw JinjaFailure("bad operand type for unary -: '\(v.typeName)'")
            }
        case .plus(let x):
            let v = try eval(x, frame)
            switch v {
            case .int, .float: return v
            case .bool(let b): return .int(b ? 1 : 0)
            case .undefined: throw undefinedFailure(v)
            default: throw JinjaFailure("bad operand type for unary +: '\(v.typeName)'")
            }
        case .not(let x):
            return .bool(!(try eval(x, frame).truthy))
        case let .binary(op, l, r):
            let a = try eval(l, frame)
            let b = try eval(r, frame)
            line = e.line
            return try PyOps.binary(op, a, b)
        case .concat(let parts):
            var s = ""
            for p in parts { s += try eval(p, frame).pyStr }
            return .string(s)
        case let .compare(first, steps):
            var left = try eval(first, frame)
            for step in steps {
                let right = try eval(step.operand, frame)
                line = e.line
                if !(try PyOps.compare(step.op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .and(l, r):
            let a = try eval(l, frame)
            return a.truthy ? try eval(r, frame) : a
        case let .or(l, r):
            let a = try eval(l, frame)
            return a.truthy ? a : try eval(r, frame)
        case let .conditional(test, then, otherwise):
            if try eval(test, frame).truthy { return try eval(then, frame) }
            if let otherwise { return try eval(otherwise, frame) }
            return .undef("the inline if-expression on line \(e.line) evaluated to false and no else section was defined.")
        case let .filter(value, name, args):
            let v = try eval(value, frame)
            return try applyFilter(name, v, args, frame, line: e.line)
        case let .test(value, name, args):
            let v = try eval(value, frame)
            let bound = try evalArgs(args, frame)
            line = e.line
            return .bool(try JinjaTests.apply(name, v, bound, self))
        case let .call(callee, args):
            let f = try eval(callee, frame)
            let bound = try evalArgs(args, frame)
            line = e.line
            return try call(f, bound)
        }
    }

    func evalArgs(_ args: JCallArgs, _ frame: JFrame) throws -> JArgs {
        JArgs(positional: try args.positional.map { try eval($0, frame) },
              keyword: try args.keyword.map { ($0.name, try eval($0.value, frame)) })
    }

    private func applyFilter(_ name: String, _ value: JValue, _ args: JCallArgs, _ frame: JFrame, line l: Int) throws -> JValue {
        let bound = try evalArgs(args, frame)
        line = l
        return try JinjaFilters.apply(name, value, bound, self)
    }

    func call(_ f: JValue, _ args: JArgs) throws -> JValue {
        switch f {
        case .callable(let c): return try c.call(args)
        case .undefined: throw undefinedFailure(f)
        default: throw JinjaFailure("'\(f.typeName)' object is not callable")
        }
    }

    // MARK: value access (the sandbox's getattr/getitem)

    /// Python iteration: lists, tuples, dict keys, string characters; undefined is empty.
    static func iterate(_ v: JValue, unpacking: Bool = false) throws -> [JValue] {
        switch v {
        case .list(let a), .tuple(let a): return a
        case .dict(let d): return d.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .undefined: return []
        case .iterator(let it): return try it.drain()
        default:
            if unpacking { throw JinjaFailure("cannot unpack non-iterable \(v.typeName) object") }
            throw JinjaFailure("'\(v.typeName)' object is not iterable")
        }
    }

    static func objectDescription(_ v: JValue) -> String {
        if case .none = v { return "None" }
        return "\(v.typeName) object"
    }

    /// `obj.name`: Python attribute first (methods), then `obj[name]`, else undefined.
    static func getattr(_ obj: JValue, _ name: String) throws -> JValue {
        if case .undefined = obj { throw undefinedFailure(obj) }
        if let method = try PyMethods.lookup(obj, name) { return method }
        switch obj {
        case .dict(let d):
            if let v = d.get(name) { return v }
        case .namespace(let ns):
            if let v = ns.attrs.get(name) { return v }
        case .loop(let l):
            if let v = loopAttribute(l, name) { return v }
        default:
            break
        }
        return .undef("'\(objectDescription(obj))' has no attribute '\(name)'")
    }

    /// `obj[key]`: item first, then (for string keys) attribute, else undefined.
    static func getitem(_ obj: JValue, _ key: JValue) throws -> JValue {
        switch obj {
        case .undefined:
            throw undefinedFailure(obj)
        case .dict(let d):
            if key.isHashable, let v = d.get(key) { return v }
        case .list(let a), .tuple(let a):
            if let i = key.integer {
                let j = i < 0 ? i + a.count : i
                if j >= 0 && j < a.count { return a[j] }
                return .undef("\(objectDescription(obj)) has no element \(key.pyRepr)")
            }
        case .string(let s):
            if let i = key.integer {
                let scalars = Array(s.unicodeScalars)
                let j = i < 0 ? i + scalars.count : i
                if j >= 0 && j < scalars.count { return .string(String(scalars[j])) }
                return .undef("\(objectDescription(obj)) has no element \(key.pyRepr)")
            }
        default:
            break
        }
        if case .string(let name) = key {
            if let method = try PyMethods.lookup(obj, name) { return method }
            if case .namespace(let ns) = obj, let v = ns.attrs.get(name) { return v }
            if case .loop(let l) = obj, let v = loopAttribute(l, name) { return v }
            return .undef("'\(objectDescription(obj))' has no attribute '\(name)'")
        }
        return .undef("\(objectDescription(obj)) has no element \(key.pyRepr)")
    }

    /// `obj[a:b:c]`: jinja2 compiles slices to plain Python subscripts, so errors propagate.
    static func slice(_ obj: JValue, _ a: JValue?, _ b: JValue?, _ c: JValue?) throws -> JValue {
        func bound(_ v: JValue?) throws -> Int? {
            guard let v else { return nil }
            if case .none = v { return nil }
            if case .undefined = v { throw JinjaFailure("slice indices must be integers or None or have an __index__ method") }
            guard let i = v.integer else { throw JinjaFailure("slice indices must be integers or None or have an __index__ method") }
            return i
        }
        let start = try bound(a), stop = try bound(b), step = try bound(c) ?? 1
        if step == 0 { throw JinjaFailure("slice step cannot be zero") }
        func indices(_ n: Int) -> [Int] {
            var lo: Int, hi: Int
            if step > 0 {
                lo = start.map { $0 < 0 ? max($0 + n, 0) : min($0, n) } ?? 0
                hi = stop.map { $0 < 0 ? max($0 + n, 0) : min($0, n) } ?? n
                return lo < hi ? Array(stride(from: lo, to: hi, by: step)) : []
            }
            lo = start.map { $0 < 0 ? max($0 + n, -1) : min($0, n - 1) } ?? n - 1
            hi = stop.map { $0 < 0 ? max($0 + n, -1) : min($0, n - 1) } ?? -1
            return lo > hi ? Array(stride(from: lo, to: hi, by: step)) : []
        }
        switch obj {
        case .list(let items): return .list(indices(items.count).map { items[$0] })
        case .tuple(let items): return .tuple(indices(items.count).map { items[$0] })
        case .string(let s):
            let scalars = Array(s.unicodeScalars)
            return .string(PyText.string(indices(scalars.count).map { scalars[$0] }))
        case .undefined: throw undefinedFailure(obj)
        default: throw JinjaFailure("'\(obj.typeName)' object is not subscriptable")
        }
    }

    static func loopAttribute(_ l: JLoop, _ name: String) -> JValue? {
        let n = l.items.count
        switch name {
        case "index": return .int(l.index0 + 1)
        case "index0": return .int(l.index0)
        case "revindex": return .int(n - l.index0)
        case "revindex0": return .int(n - l.index0 - 1)
        case "first": return .bool(l.index0 == 0)
        case "last": return .bool(l.index0 == n - 1)
        case "length": return .int(n)
        case "depth": return .int(l.depth0 + 1)
        case "depth0": return .int(l.depth0)
        case "previtem": return l.index0 > 0 ? l.items[l.index0 - 1] : .undef("there is no previous item")
        case "nextitem": return l.index0 + 1 < n ? l.items[l.index0 + 1] : .undef("there is no next item")
        case "cycle":
            return .callable(JCallable("cycle") { args in
                if args.positional.isEmpty { throw JinjaFailure("no items for cycling given") }
                return args.positional[l.index0 % args.positional.count]
            })
        case "changed":
            return .callable(JCallable("changed") { args in
                let value = JValue.tuple(args.positional)
                if let last = l.lastChangedValue, JValue.pyEqual(last, value) { return .bool(false) }
                l.lastChangedValue = value
                return .bool(true)
            })
        default: return nil
        }
    }
}
