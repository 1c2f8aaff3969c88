/// Recursive-descent parser following jinja2's `Parser` (precedence, tuple rules,
/// test-argument rules), producing `JStmt`/`JExpr` trees.
struct JinjaParser {
    private let tokens: [JToken]
    private let lexer: JinjaLexer
    private var i = 0
    /// Inside `if` tests/bodies and inline `if` expressions, jinja2 defers unknown
    /// filters/tests to run time ("soft" frames); elsewhere they fail at compile time.
    private var softDepth = 0
    private var loopDepth = 0
    /// Names loaded inside the macro being parsed (for `varargs`/`kwargs`).
    private var loadedNames: [Set<String>] = []
    /// Nesting of expressions and blocks; bounded so hostile input cannot exhaust the stack.
    private var depth = 0
    static let maxDepth = 100

    private mutating func enter() throws {
        depth += 1
        if depth > JinjaParser.maxDepth { throw fail("template nested too deeply (more than \(JinjaParser.maxDepth) levels)") }
    }

    init(source: String) throws {
        var lexer = JinjaLexer(source)
        tokens = try lexer.tokenize()
        self.lexer = lexer
    }

    // MARK: token stream

    private var current: JToken { tokens[i] }
    private func look(_ n: Int = 1) -> JToken { tokens[min(i + n, tokens.count - 1)] }
    private mutating func advance() { if i < tokens.count - 1 { i += 1 } }
    private func line(_ t: JToken) -> Int { lexer.map.location(t.offset).line }

    private func fail(_ message: String, _ token: JToken? = nil) -> ChatTemplateError {
        lexer.syntaxError(message, at: (token ?? current).offset)
    }

    private func describe(_ t: JToken) -> String {
        switch t.kind {
        case .data: return "template data / text"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let n): return n
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .op(let o): return o
        case .eof: return "end of template"
        }
    }

    private func isName(_ t: JToken, _ n: String) -> Bool {
        if case .name(let v) = t.kind { return v == n }
        return false
    }
    private func isOp(_ t: JToken, _ o: String) -> Bool {
        if case .op(let v) = t.kind { return v == o }
        return false
    }
    private mutating func skipOp(_ o: String) -> Bool {
        if isOp(current, o) { advance(); return true }
        return false
    }
    private mutating func skipName(_ n: String) -> Bool {
        if isName(current, n) { advance(); return true }
        return false
    }

    private func unexpected(expected: String) -> ChatTemplateError {
        if case .eof = current.kind { return fail("unexpected end of template, expected '\(expected)'.") }
        return fail("expected token '\(expected)', got '\(describe(current))'")
    }

    private mutating func expectOp(_ o: String) throws {
        guard isOp(current, o) else { throw unexpected(expected: o) }
        advance()
    }
    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else { throw unexpected(expected: "name") }
        advance()
        return n
    }
    private mutating func expectName(_ n: String) throws {
        guard isName(current, n) else { throw unexpected(expected: n) }
        advance()
    }
    private mutating func expectBlockEnd() throws {
        guard case .blockEnd = current.kind else { throw unexpected(expected: "end of statement block") }
        advance()
    }

    // MARK: statements

    /// The template's top-level scope, with jinja2's scope analysis applied.
    mutating func parseTemplate() throws -> JBlock {
        JinjaScopes.analyzeRoot(try subparse(endTokens: []))
    }

    /// Parses until a block whose first name is in `endTokens`; leaves the stream on that name.
    private mutating func subparse(endTokens: [String]) throws -> [JStmt] {
        var body: [JStmt] = []
        while true {
            let t = current
            switch t.kind {
            case .data(let text):
                body.append(.data(text))
                advance()
            case .variableBegin:
                advance()
                let e = try parseTuple(withCondexpr: true)
                guard case .variableEnd = current.kind else { throw unexpected(expected: "end of print statement") }
                advance()
                body.append(.output(e))
            case .blockBegin:
                advance()
                if case .name(let n) = current.kind, endTokens.contains(n) { return body }
                body.append(try parseStatement(endTokens: endTokens))
                try expectBlockEnd()
            case .eof:
                if !endTokens.isEmpty {
                    let list = endTokens.map { "'\($0)'" }.joined(separator: " or ")
                    throw fail("Unexpected end of template. Jinja was looking for the following tags: \(list).")
                }
                return body
            default:
                throw fail("unexpected '\(describe(t))'")
            }
        }
    }

    /// `parse_statements`: optional colon, block end, body up to an end tag.
    private mutating func parseBody(_ endTokens: [String], dropNeedle: Bool) throws -> [JStmt] {
        _ = skipOp(":")
        try expectBlockEnd()
        let body = try subparse(endTokens: endTokens)
        if dropNeedle { advance() }
        return body
    }

    private mutating func parseStatement(endTokens: [String]) throws -> JStmt {
        try enter()
        defer { depth -= 1 }
        let t = current
        guard case .name(let keyword) = t.kind else { throw fail("tag name expected") }
        switch keyword {
        case "if": return try parseIf()
        case "for": return try parseFor()
        case "set": return try parseSet()
        case "macro": return try parseMacro()
        case "with": return try parseWith()
        case "filter": return try parseFilterBlock()
        case "print":
            advance()
            var outputs: [JStmt] = []
            while !isBlockEnd(current) {
                if !outputs.isEmpty { try expectOp(",") }
                outputs.append(.output(try parseExpression()))
            }
            return .with([], body: JBlock(outputs))
        case "break", "continue":
            advance()
            if loopDepth == 0 { throw fail("'\(keyword)' outside of a loop", t) }
            return keyword == "break" ? .breakLoop : .continueLoop
        case "generation":
            advance()
            return .generation(JBlock(try parseBody(["endgeneration"], dropNeedle: true)))
        case "block", "extends", "include", "import", "from", "call", "autoescape", "raw", "do":
            throw fail("'\(keyword)' tags are not supported by this chat-template interpreter", t)
        default:
            var message = "Encountered unknown tag '\(keyword)'."
            if !endTokens.isEmpty {
                message += " Jinja was looking for the following tags: " + endTokens.map { "'\($0)'" }.joined(separator: " or ") + "."
            }
            throw fail(message, t)
        }
    }

    private mutating func parseIf() throws -> JStmt {
        advance()
        var branches: [JIfBranch] = []
        var otherwise: [JStmt] = []
        softDepth += 1
        defer { softDepth -= 1 }
        while true {
            let test = try parseTuple(withCondexpr: false)
            let body = try parseBody(["elif", "else", "endif"], dropNeedle: false)
            branches.append(JIfBranch(test: test, body: body))
            let needle = current
            advance()
            if isName(needle, "elif") { continue }
            if isName(needle, "else") { otherwise = try parseBody(["endif"], dropNeedle: true) }
            break
        }
        return .ifChain(branches, otherwise: otherwise)
    }

    private mutating func parseFor() throws -> JStmt {
        let start = current
        advance()
        let target = try parseAssignTarget(extraEnd: ["in"])
        try expectName("in")
        let iterable = try parseTuple(withCondexpr: false, extraEnd: ["recursive"])
        var filter: JExpr?
        if skipName("if") { filter = try parseExpression() }
        if isName(current, "recursive") { throw fail("recursive loops are not supported by this chat-template interpreter") }
        let savedSoft = softDepth
        softDepth = 0
        loopDepth += 1
        let body = try parseBody(["endfor", "else"], dropNeedle: false)
        loopDepth -= 1
        var otherwise: [JStmt] = []
        let needle = current
        advance()
        if isName(needle, "else") { otherwise = try parseBody(["endfor"], dropNeedle: true) }
        softDepth = savedSoft
        return .forLoop(target: target, iterable: iterable, filter: filter, body: JBlock(body), otherwise: JBlock(otherwise),
                        line: line(start))
    }

    private mutating func parseSet() throws -> JStmt {
        let start = current
        advance()
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            return .set(target, try parseTuple(withCondexpr: true), line: line(start))
        }
        var filters: [JFilterCall] = []
        while skipOp("|") { filters.append(try parseFilterCall()) }
        let body = try parseBody(["endset"], dropNeedle: true)
        return .setBlock(target, filters: filters, body: JBlock(body), line: line(start))
    }

    private mutating func parseMacro() throws -> JStmt {
        advance()
        let name = try expectName()
        try expectOp("(")
        var params: [String] = []
        var defaults: [JExpr] = []
        while !isOp(current, ")") {
            if !params.isEmpty { try expectOp(",") }
            let p = try expectName()
            if skipOp("=") {
                defaults.append(try parseExpression())
            } else if !defaults.isEmpty {
                throw fail("non-default argument follows default argument")
            }
            params.append(p)
        }
        try expectOp(")")
        let savedSoft = softDepth, savedLoop = loopDepth
        softDepth = 0
        loopDepth = 0
        loadedNames.append([])
        let body = try parseBody(["endmacro"], dropNeedle: true)
        let names = loadedNames.removeLast()
        softDepth = savedSoft
        loopDepth = savedLoop
        return .macro(JMacro(name: name, params: params, defaults: defaults, body: JBlock(body),
                             usesVarargs: names.contains("varargs"), usesKwargs: names.contains("kwargs")))
    }

    private mutating func parseWith() throws -> JStmt {
        advance()
        var assignments: [JWithAssignment] = []
        while !isBlockEnd(current) {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append(JWithAssignment(target: target, value: try parseExpression()))
        }
        return .with(assignments, body: JBlock(try parseBody(["endwith"], dropNeedle: true)))
    }

    private mutating func parseFilterBlock() throws -> JStmt {
        advance()
        var filters = [try parseFilterCall()]
        while skipOp("|") { filters.append(try parseFilterCall()) }
        return .filterBlock(filters, body: JBlock(try parseBody(["endfilter"], dropNeedle: true)))
    }

    private func isBlockEnd(_ t: JToken) -> Bool {
        if case .blockEnd = t.kind { return true }
        return false
    }

    private mutating func parseAssignTarget(extraEnd: [String] = [], withNamespace: Bool = false) throws -> JTarget {
        if withNamespace, case .name(let ns) = current.kind, isOp(look(), ".") {
            advance()
            advance()
            return .namespaceAttr(ns, try expectName())
        }
        let start = current
        let e = try parseTuple(simplified: true, withCondexpr: false, extraEnd: extraEnd)
        guard let target = assignable(e) else { throw fail("can't assign to this expression", start) }
        return target
    }

    private func assignable(_ e: JExpr) -> JTarget? {
        switch e.kind {
        case .name(let n): return .name(n)
        case .tuple(let items):
            var targets: [JTarget] = []
            for item in items {
                guard let t = assignable(item) else { return nil }
                targets.append(t)
            }
            return .tuple(targets)
        default: return nil
        }
    }

    // MARK: expressions

    private mutating func parseExpression(withCondexpr: Bool = true) throws -> JExpr {
        withCondexpr ? try parseCondexpr() : try parseOr()
    }

    private func isTupleEnd(_ extraEnd: [String]) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd: return true
        case .op(")"): return true
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }

    private mutating func parseTuple(simplified: Bool = false, withCondexpr: Bool = true,
                                     extraEnd: [String] = [], explicitParentheses: Bool = false) throws -> JExpr {
        let startLine = line(current)
        var args: [JExpr] = []
        var isTuple = false
        while true {
            if !args.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            if simplified {
                args.append(try parsePrimary())
            } else {
                args.append(try parseExpression(withCondexpr: withCondexpr))
            }
            if isOp(current, ",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let only = args.first { return only }
            if !explicitParentheses { throw fail("Expected an expression, got '\(describe(current))'") }
        }
        return JExpr(kind: .tuple(args), line: startLine)
    }

    private mutating func parseCondexpr() throws -> JExpr {
        var expr1 = try parseOr()
        while isName(current, "if") {
            let l = line(current)
            advance()
            softDepth += 1
            defer { softDepth -= 1 }
            let test = try parseOr()
            var otherwise: JExpr?
            if skipName("else") { otherwise = try parseCondexpr() }
            expr1 = JExpr(kind: .conditional(test: test, then: expr1, otherwise: otherwise), line: l)
        }
        return expr1
    }

    private mutating func parseOr() throws -> JExpr {
        var left = try parseAnd()
        while isName(current, "or") {
            let l = line(current)
            advance()
            left = JExpr(kind: .or(left, try parseAnd()), line: l)
        }
        return left
    }

    private mutating func parseAnd() throws -> JExpr {
        var left = try parseNot()
        while isName(current, "and") {
            let l = line(current)
            advance()
            left = JExpr(kind: .and(left, try parseNot()), line: l)
        }
        return left
    }

    private mutating func parseNot() throws -> JExpr {
        try enter()
        defer { depth -= 1 }
        if isName(current, "not") {
            let l = line(current)
            advance()
            return JExpr(kind: .not(try parseNot()), line: l)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JExpr {
        let l = line(current)
        let expr = try parseMath1()
        var steps: [JCompareStep] = []
        while true {
            if case .op(let o) = current.kind, let op = JCompareOp(rawValue: o), op != .isIn, op != .notIn {
                advance()
                steps.append(JCompareStep(op: op, operand: try parseMath1()))
            } else if skipName("in") {
                steps.append(JCompareStep(op: .isIn, operand: try parseMath1()))
            } else if isName(current, "not"), isName(look(), "in") {
                advance()
                advance()
                steps.append(JCompareStep(op: .notIn, operand: try parseMath1()))
            } else {
                break
            }
        }
        return steps.isEmpty ? expr : JExpr(kind: .compare(expr, steps), line: l)
    }

    private mutating func parseMath1() throws -> JExpr {
        var left = try parseConcat()
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            let l = line(current)
            advance()
            left = JExpr(kind: .binary(o == "+" ? .add : .sub, left, try parseConcat()), line: l)
        }
        return left
    }

    private mutating func parseConcat() throws -> JExpr {
        let l = line(current)
        var args = [try parseMath2()]
        while skipOp("~") { args.append(try parseMath2()) }
        return args.count == 1 ? args[0] : JExpr(kind: .concat(args), line: l)
    }

    private mutating func parseMath2() throws -> JExpr {
        var left = try parsePow()
        while case .op(let o) = current.kind, let op = JBinaryOp(rawValue: o), [.mul, .div, .floorDiv, .mod].contains(op) {
            let l = line(current)
            advance()
            left = JExpr(kind: .binary(op, left, try parsePow()), line: l)
        }
        return left
    }

    private mutating func parsePow() throws -> JExpr {
        var left = try parseUnary()
        while isOp(current, "**") {
            let l = line(current)
            advance()
            left = JExpr(kind: .binary(.pow, left, try parseUnary()), line: l)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JExpr {
        try enter()
        defer { depth -= 1 }
        let l = line(current)
        var node: JExpr
        if skipOp("-") {
            node = JExpr(kind: .negate(try parseUnary(withFilter: false)), line: l)
        } else if skipOp("+") {
            node = JExpr(kind: .plus(try parseUnary(withFilter: false)), line: l)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JExpr {
        let t = current
        let l = line(t)
        switch t.kind {
        case .name(let n):
            advance()
            switch n {
            case "true", "True": return JExpr(kind: .literal(.bool(true)), line: l)
            case "false", "False": return JExpr(kind: .literal(.bool(false)), line: l)
            case "none", "None": return JExpr(kind: .literal(.none), line: l)
            default:
                if !loadedNames.isEmpty { loadedNames[loadedNames.count - 1].insert(n) }
                return JExpr(kind: .name(n), line: l)
            }
        case .string(let first):
            advance()
            var value = first
            while case .string(let more) = current.kind {
                value += more
                advance()
            }
            return JExpr(kind: .literal(.string(value)), line: l)
        case .integer(let v):
            advance()
            return JExpr(kind: .literal(.int(v)), line: l)
        case .float(let v):
            advance()
            return JExpr(kind: .literal(.float(v)), line: l)
        case .op("("):
            advance()
            let e = try parseTuple(explicitParentheses: true)
            try expectOp(")")
            return e
        case .op("["):
            advance()
            var items: [JExpr] = []
            while !isOp(current, "]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp(current, "]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return JExpr(kind: .list(items), line: l)
        case .op("{"):
            advance()
            var items: [JDictItem] = []
            while !isOp(current, "}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp(current, "}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append(JDictItem(key: key, value: try parseExpression()))
            }
            try expectOp("}")
            return JExpr(kind: .dict(items), line: l)
        default:
            if case .eof = t.kind { throw fail("unexpected end of template") }
            throw fail("unexpected '\(describe(t))'")
        }
    }

    private mutating func parsePostfix(_ start: JExpr) throws -> JExpr {
        var node = start
        while true {
            let l = line(current)
            if isOp(current, ".") {
                advance()
                let t = current
                advance()
                switch t.kind {
                case .name(let n): node = JExpr(kind: .getattr(node, n), line: l)
                case .integer(let v): node = JExpr(kind: .getitem(node, JExpr(kind: .literal(.int(v)), line: l)), line: l)
                default: throw fail("expected name or number", t)
                }
            } else if isOp(current, "[") {
                advance()
                var args: [JExpr] = []
                var slice: (JExpr?, JExpr?, JExpr?)?
                while !isOp(current, "]") {
                    if !args.isEmpty || slice != nil { try expectOp(",") }
                    let sub = try parseSubscribed()
                    switch sub {
                    case .expr(let e): args.append(e)
                    case .slice(let a, let b, let c):
                        if !args.isEmpty || slice != nil { throw fail("multi-dimensional subscripts are not supported") }
                        slice = (a, b, c)
                    }
                }
                try expectOp("]")
                if let slice {
                    if !args.isEmpty { throw fail("multi-dimensional subscripts are not supported") }
                    node = JExpr(kind: .slice(node, start: slice.0, stop: slice.1, step: slice.2), line: l)
                } else if args.count == 1 {
                    node = JExpr(kind: .getitem(node, args[0]), line: l)
                } else {
                    node = JExpr(kind: .getitem(node, JExpr(kind: .tuple(args), line: l)), line: l)
                }
            } else if isOp(current, "(") {
                node = JExpr(kind: .call(node, try parseCallArgs()), line: l)
            } else {
                return node
            }
        }
    }

    private enum Subscript { case expr(JExpr), slice(JExpr?, JExpr?, JExpr?) }

    private mutating func parseSubscribed() throws -> Subscript {
        var first: JExpr?
        if isOp(current, ":") {
            advance()
        } else {
            let e = try parseExpression()
            if !isOp(current, ":") { return .expr(e) }
            advance()
            first = e
        }
        var stop: JExpr?
        if !isOp(current, ":") && !isOp(current, "]") && !isOp(current, ",") { stop = try parseExpression() }
        var step: JExpr?
        if skipOp(":") {
            if !isOp(current, "]") && !isOp(current, ",") { step = try parseExpression() }
        }
        return .slice(first, stop, step)
    }

    private mutating func parseCallArgs() throws -> JCallArgs {
        try expectOp("(")
        var args = JCallArgs()
        var requireComma = false
        while !isOp(current, ")") {
            if requireComma {
                try expectOp(",")
                if isOp(current, ")") { break }
            }
            if isOp(current, "*") || isOp(current, "**") {
                throw fail("*args and **kwargs in calls are not supported by this chat-template interpreter")
            }
            if case .name(let key) = current.kind, isOp(look(), "=") {
                advance()
                advance()
                args.keyword.append(JKeyword(name: key, value: try parseExpression()))
            } else {
                if !args.keyword.isEmpty { throw fail("invalid syntax for function call expression") }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilterExpr(_ start: JExpr) throws -> JExpr {
        var node = start
        while true {
            if isOp(current, "|") {
                advance()
                let f = try parseFilterCall()
                node = JExpr(kind: .filter(node, name: f.name, args: f.args), line: f.line)
            } else if isName(current, "is") {
                node = try parseTest(node)
            } else if isOp(current, "(") {
                node = JExpr(kind: .call(node, try parseCallArgs()), line: line(current))
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterCall() throws -> JFilterCall {
        let t = current
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        if softDepth == 0 && !JinjaFilters.names.contains(name) { throw fail("No filter named '\(name)'.", t) }
        let args = isOp(current, "(") ? try parseCallArgs() : JCallArgs()
        return JFilterCall(name: name, args: args, line: line(t))
    }

    private mutating func parseTest(_ node: JExpr) throws -> JExpr {
        let isToken = current
        advance()
        let negated = skipName("not")
        let nameToken = current
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        if softDepth == 0 && !JinjaTests.names.contains(name) { throw fail("No test named '\(name)'.", nameToken) }
        var args = JCallArgs()
        if isOp(current, "(") {
            args = try parseCallArgs()
        } else {
            var takesArg = false
            switch current.kind {
            case .name(let n): takesArg = !["else", "or", "and"].contains(n)
            case .string, .integer, .float: takesArg = true
            case .op(let o): takesArg = o == "(" || o == "[" || o == "{"
            default: break
            }
            if takesArg {
                if isName(current, "is") { throw fail("You cannot chain multiple tests with is") }
                let arg = try parsePostfix(try parsePrimary())
                args.positional = [arg]
            }
        }
        let l = line(isToken)
        let test = JExpr(kind: .test(node, name: name, args: args), line: l)
        return negated ? JExpr(kind: .not(test), line: l) : test
    }
}
