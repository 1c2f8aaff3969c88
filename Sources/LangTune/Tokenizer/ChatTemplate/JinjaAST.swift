/// A literal constant in the template source.
enum JLiteral: Sendable {
    case none
    case bool(Bool)
    case int(Int)
    case float(Double)
    case string(String)

    var value: JValue {
        switch self {
        case .none: return .none
        case .bool(let b): return .bool(b)
        case .int(let i): return .int(i)
        case .float(let d): return .float(d)
        case .string(let s): return .string(s)
        }
    }
}

enum JBinaryOp: String, Sendable {
    case add = "+", sub = "-", mul = "*", div = "/", floorDiv = "//", mod = "%", pow = "**"
}

enum JCompareOp: String, Sendable {
    case eq = "==", ne = "!=", lt = "<", le = "<=", gt = ">", ge = ">=", isIn = "in", notIn = "not in"
}

/// A call's arguments as written.
struct JCallArgs: Sendable {
    var positional: [JExpr] = []
    var keyword: [JKeyword] = []
}

struct JKeyword: Sendable {
    let name: String
    let value: JExpr
}

struct JDictItem: Sendable {
    let key: JExpr
    let value: JExpr
}

struct JCompareStep: Sendable {
    let op: JCompareOp
    let operand: JExpr
}

/// An expression node; `line` is where it starts, for error messages.
struct JExpr: Sendable {
    indirect enum Kind: Sendable {
        case literal(JLiteral)
        case name(String)
        case list([JExpr])
        case tuple([JExpr])
        case dict([JDictItem])
        case getattr(JExpr, String)
        case getitem(JExpr, JExpr)
        case slice(JExpr, start: JExpr?, stop: JExpr?, step: JExpr?)
        case negate(JExpr)
        case plus(JExpr)
        case not(JExpr)
        case binary(JBinaryOp, JExpr, JExpr)
        case concat([JExpr])
        case compare(JExpr, [JCompareStep])
        case and(JExpr, JExpr)
        case or(JExpr, JExpr)
        case conditional(test: JExpr, then: JExpr, otherwise: JExpr?)
        case filter(JExpr, name: String, args: JCallArgs)
        case test(JExpr, name: String, args: JCallArgs)
        case call(JExpr, JCallArgs)
    }
    let kind: Kind
    let line: Int
}

/// An assignment target: `x`, `a, b`, or `ns.attr`.
indirect enum JTarget: Sendable {
    case name(String)
    case tuple([JTarget])
    case namespaceAttr(String, String)
}

struct JFilterCall: Sendable {
    let name: String
    let args: JCallArgs
    let line: Int
}

struct JWithAssignment: Sendable {
    let target: JTarget
    let value: JExpr
}

struct JIfBranch: Sendable {
    let test: JExpr
    let body: [JStmt]
}

/// The statements of a construct that gets its own scope (loop body, macro, `with`, …).
struct JBlock: Sendable {
    var stmts: [JStmt]
    /// Names jinja2 initializes as undefined when the scope is entered, hiding any outer
    /// value (see JinjaScopes.swift); filled in after parsing.
    var undefinedNames: [String] = []
    init(_ stmts: [JStmt]) { self.stmts = stmts }
}

struct JMacro: Sendable {
    let name: String
    let params: [String]
    /// Defaults of the last `defaults.count` parameters.
    let defaults: [JExpr]
    var body: JBlock
    let usesVarargs: Bool
    let usesKwargs: Bool
}

/// A statement node.
indirect enum JStmt: Sendable {
    case data(String)
    case output(JExpr)
    case ifChain([JIfBranch], otherwise: [JStmt])
    case forLoop(target: JTarget, iterable: JExpr, filter: JExpr?, body: JBlock, otherwise: JBlock, line: Int)
    case set(JTarget, JExpr, line: Int)
    case setBlock(JTarget, filters: [JFilterCall], body: JBlock, line: Int)
    case macro(JMacro)
    case with([JWithAssignment], body: JBlock)
    case filterBlock([JFilterCall], body: JBlock)
    case breakLoop
    case continueLoop
    /// transformers' `{% generation %}`: renders its body unchanged (in its own scope,
    /// as the CallBlock it compiles to).
    case generation(JBlock)
}
