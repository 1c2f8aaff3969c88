/// jinja2's built-in tests (`x is defined`, `x is string`, `n is divisibleby 3`, …).
enum JinjaTests {
    static let names: Set<String> = [
        "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false", "filter",
        "float", "ge", "gt", "greaterthan", "in", "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping",
        "ne", "none", "number", "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
        "==", "!=", "<", "<=", ">", ">=",
    ]

    static func apply(_ name: String, _ v: JValue, _ args: JArgs, _ interp: JinjaInterpreter) throws -> Bool {
        func other() throws -> JValue { try args.bind(name, ["other"], required: 1)[0]! }
        func noArgs() throws { _ = try args.bind(name, [], required: 0) }
        switch name {
        case "defined": try noArgs(); return !v.isUndefined
        case "undefined": try noArgs(); return v.isUndefined
        case "none": try noArgs(); if case .none = v { return true }; return false
        case "boolean": try noArgs(); if case .bool = v { return true }; return false
        case "true": try noArgs(); if case .bool(true) = v { return true }; return false
        case "false": try noArgs(); if case .bool(false) = v { return true }; return false
        case "integer": try noArgs(); if case .int = v { return true }; return false
        case "float": try noArgs(); if case .float = v { return true }; return false
        case "number": try noArgs(); return v.number != nil
        case "string": try noArgs(); if case .string = v { return true }; return false
        case "mapping": try noArgs(); if case .dict = v { return true }; return false
        case "callable":
            try noArgs()
            switch v {
            case .callable, .undefined: return true  // Undefined defines __call__
            default: return false
            }
        case "escaped": try noArgs(); return false
        case "iterable":
            try noArgs()
            switch v {
            case .list, .tuple, .dict, .string, .undefined, .iterator: return true
            default: return false
            }
        case "sequence":
            try noArgs()
            switch v {
            case .list, .tuple, .dict, .string, .undefined: return true
            default: return false
            }
        case "lower", "upper":
            try noArgs()
            return PyText.isCase(v.pyStr, lower: name == "lower")
        case "odd", "even":
            try noArgs()
            let r = try PyOps.binary(.mod, v, .int(2))
            return JValue.pyEqual(r, .int(name == "odd" ? 1 : 0))
        case "divisibleby":
            let n = try args.bind(name, ["num"], required: 1)[0]!
            return JValue.pyEqual(try PyOps.binary(.mod, v, n), .int(0))
        case "filter": try noArgs(); if case .string(let s) = v { return JinjaFilters.names.contains(s) }; return false
        case "test": try noArgs(); if case .string(let s) = v { return names.contains(s) }; return false
        case "sameas":
            let o = try other()
            switch (v, o) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.int(a), .int(b)): return a == b
            case let (.namespace(a), .namespace(b)): return a === b
            case let (.callable(a), .callable(b)): return a === b
            default: return false
            }
        case "in": return try PyOps.contains(try args.bind(name, ["seq"], required: 1)[0]!, v)
        case "eq", "equalto", "==": return try PyOps.compare(.eq, v, other())
        case "ne", "!=": return try PyOps.compare(.ne, v, other())
        case "lt", "lessthan", "<": return try PyOps.compare(.lt, v, other())
        case "le", "<=": return try PyOps.compare(.le, v, other())
        case "gt", "greaterthan", ">": return try PyOps.compare(.gt, v, other())
        case "ge", ">=": return try PyOps.compare(.ge, v, other())
        default: throw JinjaFailure("No test named '\(name)'.")
        }
    }
}
