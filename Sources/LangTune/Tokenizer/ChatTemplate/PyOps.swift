import Foundation

/// Python's binary operators and comparisons on `JValue`s.
enum PyOps {
    static func binary(_ op: JBinaryOp, _ a: JValue, _ b: JValue) throws -> JValue {
        if a.isUndefined { throw undefinedFailure(a) }
        if b.isUndefined { throw undefinedFailure(b) }
        switch op {
        case .add: return try add(a, b)
        case .sub:
            if let x = a.integer, let y = b.integer { return .int(try checked(x.subtractingReportingOverflow(y))) }
            if let x = a.number, let y = b.number { return .float(x - y) }
        case .mul: return try multiply(a, b)
        case .div:
            if let x = a.number, let y = b.number {
                if y == 0 { throw JinjaFailure("division by zero") }
                return .float(x / y)
            }
        case .floorDiv:
            if let x = a.integer, let y = b.integer {
                if y == 0 { throw JinjaFailure("integer division or modulo by zero") }
                return .int(try floorDiv(x, y))
            }
            if let x = a.number, let y = b.number {
                if y == 0 { throw JinjaFailure("float floor division by zero") }
                return .float(floatDivmod(x, y).div)
            }
        case .mod:
            if case .string = a { throw JinjaFailure("printf-style string formatting with % is not supported") }
            if let x = a.integer, let y = b.integer {
                if y == 0 { throw JinjaFailure("integer division or modulo by zero") }
                let r = x % y
                return .int(r != 0 && ((r < 0) != (y < 0)) ? r + y : r)
            }
            if let x = a.number, let y = b.number {
                if y == 0 { throw JinjaFailure("float modulo") }
                return .float(floatDivmod(x, y).mod)
            }
        case .pow:
            if let x = a.integer, let y = b.integer {
                if y >= 0 { return .int(try intPow(x, y)) }
                if x == 0 { throw JinjaFailure("0.0 cannot be raised to a negative power") }
                return .float(Foundation.pow(Double(x), Double(y)))
            }
            if let x = a.number, let y = b.number {
                if x == 0 && y < 0 { throw JinjaFailure("0.0 cannot be raised to a negative power") }
                if x < 0 && y != y.rounded() { throw JinjaFailure("negative number cannot be raised to a fractional power") }
                return .float(Foundation.pow(x, y))
            }
        }
        throw JinjaFailure("unsupported operand type(s) for \(op.rawValue): '\(a.typeName)' and '\(b.typeName)'")
    }

    private static func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> Int {
        if r.overflow { throw JinjaFailure("integer overflow (Python would use a big integer)") }
        return r.partialValue
    }

    private static func add(_ a: JValue, _ b: JValue) throws -> JValue {
        switch (a, b) {
        case let (.string(x), .string(y)): return .string(x + y)
        case let (.list(x), .list(y)): return .list(x + y)
        case let (.tuple(x), .tuple(y)): return .tuple(x + y)
        case (.string, _): throw JinjaFailure("can only concatenate str (not \"\(b.typeName)\") to str")
        case (.list, _): throw JinjaFailure("can only concatenate list (not \"\(b.typeName)\") to list")
        case (.tuple, _): throw JinjaFailure("can only concatenate tuple (not \"\(b.typeName)\") to tuple")
        default:
            if let x = a.integer, let y = b.integer { return .int(try checked(x.addingReportingOverflow(y))) }
            if let x = a.number, let y = b.number { return .float(x + y) }
            throw JinjaFailure("unsupported operand type(s) for +: '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    private static func repeatCount(_ n: Int, _ unit: Int) throws -> Int {
        let count = max(0, n)
        let (total, overflow) = count.multipliedReportingOverflow(by: max(unit, 1))
        if overflow || total > JinjaInterpreter.maxRepeat { throw JinjaFailure("repetition result too large") }
        return count
    }

    private static func multiply(_ a: JValue, _ b: JValue) throws -> JValue {
        switch (a, b) {
        case let (.string(s), n) where n.integer != nil:
            return .string(String(repeating: s, count: try repeatCount(n.integer!, s.utf8.count)))
        case let (n, .string(s)) where n.integer != nil:
            return .string(String(repeating: s, count: try repeatCount(n.integer!, s.utf8.count)))
        case let (.list(x), n) where n.integer != nil:
            return .list(Array([[JValue]](repeating: x, count: try repeatCount(n.integer!, x.count)).joined()))
        case let (n, .list(x)) where n.integer != nil:
            return .list(Array([[JValue]](repeating: x, count: try repeatCount(n.integer!, x.count)).joined()))
        case let (.tuple(x), n) where n.integer != nil:
            return .tuple(Array([[JValue]](repeating: x, count: try repeatCount(n.integer!, x.count)).joined()))
        case let (n, .tuple(x)) where n.integer != nil:
            return .tuple(Array([[JValue]](repeating: x, count: try repeatCount(n.integer!, x.count)).joined()))
        default:
            if let x = a.integer, let y = b.integer { return .int(try checked(x.multipliedReportingOverflow(by: y))) }
            if let x = a.number, let y = b.number { return .float(x * y) }
            throw JinjaFailure("unsupported operand type(s) for *: '\(a.typeName)' and '\(b.typeName)'")
        }
    }

    private static func floorDiv(_ x: Int, _ y: Int) throws -> Int {
        if x == Int.min && y == -1 { throw JinjaFailure("integer overflow") }
        let q = x / y
        return (x % y != 0 && ((x < 0) != (y < 0))) ? q - 1 : q
    }

    private static func intPow(_ base: Int, _ exp: Int) throws -> Int {
        var result = 1, b = base, e = exp
        while e > 0 {
            if e & 1 == 1 { result = try checked(result.multipliedReportingOverflow(by: b)) }
            e >>= 1
            if e > 0 { b = try checked(b.multipliedReportingOverflow(by: b)) }
        }
        return result
    }

    /// CPython's `float_divmod`.
    static func floatDivmod(_ vx: Double, _ wx: Double) -> (div: Double, mod: Double) {
        var mod = fmod(vx, wx)
        var div = (vx - mod) / wx
        if mod != 0 {
            if (wx < 0) != (mod < 0) {
                mod += wx
                div -= 1
            }
        } else {
            mod = copysign(0, wx)
        }
        var floordiv: Double
        if div != 0 {
            floordiv = floor(div)
            if div - floordiv > 0.5 { floordiv += 1 }
        } else {
            floordiv = copysign(0, vx / wx)
        }
        return (floordiv, mod)
    }

    static func compare(_ op: JCompareOp, _ a: JValue, _ b: JValue) throws -> Bool {
        switch op {
        case .eq: return JValue.pyEqual(a, b)
        case .ne: return !JValue.pyEqual(a, b)
        case .lt: return try JValue.pyLess(a, b, op: "<")
        case .gt: return try JValue.pyLess(b, a, op: ">")
        case .le: return try lessOrEqual(a, b, op: "<=")
        case .ge: return try lessOrEqual(b, a, op: ">=")
        case .isIn: return try contains(b, a)
        case .notIn: return !(try contains(b, a))
        }
    }

    private static func lessOrEqual(_ a: JValue, _ b: JValue, op: String) throws -> Bool {
        if let x = a.integer, let y = b.integer { return x <= y }
        if let x = a.number, let y = b.number { return x <= y }
        return try JValue.pyLess(a, b, op: op) || JValue.pyEqual(a, b)
    }

    /// Python `item in container`.
    static func contains(_ container: JValue, _ item: JValue) throws -> Bool {
        switch container {
        case .string(let s):
            guard case .string(let needle) = item else {
                if item.isUndefined { throw undefinedFailure(item) }
                throw JinjaFailure("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return PyText.contains(s, needle)
        case .list(let a), .tuple(let a):
            return a.contains { JValue.pyEqual($0, item) }
        case .dict(let d):
            guard item.isHashable else { throw JinjaFailure("unhashable type: '\(item.typeName)'") }
            return d.get(item) != nil
        case .undefined:
            return false
        case .iterator(let it):
            // Python consumes the iterator up to the first match.
            while let v = try it.next() { if JValue.pyEqual(v, item) { return true } }
            return false
        default:
            throw JinjaFailure("argument of type '\(container.typeName)' is not iterable")
        }
    }
}
