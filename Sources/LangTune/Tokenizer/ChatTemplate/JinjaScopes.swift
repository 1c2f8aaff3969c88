/// jinja2's symbol analysis (`jinja2.idtracking`), reduced to the one thing that changes
/// what a template renders: which names a new scope starts as *undefined*.
///
/// jinja2 compiles each scope (template top level, loop body, macro, `with`, block
/// `set`, …) to Python locals. A name assigned unconditionally in a scope, before any
/// read of it in that scope and with no binding in an enclosing scope, starts as
/// `missing`, so reads from nested scopes that run before the assignment see undefined
/// even when the caller passed a variable of that name. Names assigned only inside `if`
/// branches, read before being assigned, or bound in an enclosing scope instead start
/// with the outer value, which is what a plain scope chain gives. So the interpreter
/// keeps its scope chain and pre-binds just these names to undefined on scope entry.
enum JinjaScopes {
    private enum Load { case parameter, resolve, alias, undefined }

    /// A finished scope's names, for `find_ref` from nested scopes.
    private final class Chain {
        let names: Set<String>
        let parent: Chain?
        init(names: Set<String>, parent: Chain?) {
            self.names = names
            self.parent = parent
        }
        func find(_ name: String) -> Bool {
            var c: Chain? = self
            while let chain = c {
                if chain.names.contains(name) { return true }
                c = chain.parent
            }
            return false
        }
    }

    /// `idtracking.Symbols` for one scope while it is being visited.
    private struct Symbols {
        let parent: Chain?
        var loads: [String: Load] = [:]
        var stores: Set<String> = []

        func findRef(_ name: String) -> Bool { loads[name] != nil || parent?.find(name) == true }

        mutating func store(_ name: String) {
            stores.insert(name)
            if loads[name] == nil { loads[name] = parent?.find(name) == true ? .alias : .undefined }
        }

        mutating func declareParameter(_ name: String) {
            stores.insert(name)
            loads[name] = .parameter
        }

        mutating func load(_ name: String) {
            if !findRef(name) { loads[name] = .resolve }
        }

        mutating func branchUpdate(_ branches: [Symbols]) {
            var branchStores = Set<String>()
            for b in branches { branchStores.formUnion(b.stores) }
            branchStores.subtract(stores)
            for b in branches {
                loads.merge(b.loads) { _, new in new }
                stores.formUnion(b.stores)
            }
            for name in branchStores { loads[name] = parent?.find(name) == true ? .alias : .resolve }
        }
    }

    static func analyzeRoot(_ stmts: [JStmt]) -> JBlock {
        analyze(JBlock(stmts), parameters: [], extraLoads: [], parent: nil)
    }

    private static func analyze(_ block: JBlock, parameters: [String], extraLoads: [JExpr], parent: Chain?) -> JBlock {
        var symbols = Symbols(parent: parent)
        for p in parameters { symbols.declareParameter(p) }
        for e in extraLoads { load(e, &symbols) }
        for s in block.stmts { visit(s, &symbols) }
        let chain = Chain(names: Set(symbols.loads.keys), parent: parent)
        var out = JBlock(block.stmts.map { nested($0, chain) })
        out.undefinedNames = symbols.loads.filter { $0.value == .undefined }.map(\.key).sorted()
        return out
    }

    /// `FrameSymbolVisitor`: what a statement does to its own scope's symbols.
    private static func visit(_ s: JStmt, _ sym: inout Symbols) {
        switch s {
        case .data, .breakLoop, .continueLoop, .generation:
            break
        case .output(let e):
            load(e, &sym)
        case let .ifChain(branches, otherwise):
            guard let first = branches.first else { return }
            load(first.test, &sym)
            var body = sym
            for st in first.body { visit(st, &body) }
            // jinja2 nests each `elif` as an If node inside one shared branch.
            var elif = sym
            for b in branches.dropFirst() {
                load(b.test, &elif)
                var inner = elif
                for st in b.body { visit(st, &inner) }
                elif.branchUpdate([inner, elif, elif])
            }
            var otherwiseSymbols = sym
            for st in otherwise { visit(st, &otherwiseSymbols) }
            sym.branchUpdate([body, elif, otherwiseSymbols])
        case .forLoop(_, let iterable, _, _, _, _):
            load(iterable, &sym)
        case let .set(target, value, _):
            load(value, &sym)
            store(target, &sym)
        case .setBlock(let target, _, _, _):
            store(target, &sym)
        case .macro(let m):
            sym.store(m.name)
        case .with(let assignments, _):
            for a in assignments { load(a.value, &sym) }
        case .filterBlock(let filters, _):
            for f in filters { loadArgs(f.args, &sym) }
        }
    }

    private static func store(_ target: JTarget, _ sym: inout Symbols) {
        switch target {
        case .name(let n): sym.store(n)
        case .tuple(let items): for t in items { store(t, &sym) }
        case .namespaceAttr(let ns, _): sym.load(ns)
        }
    }

    private static func targetNames(_ target: JTarget) -> [String] {
        switch target {
        case .name(let n): return [n]
        case .tuple(let items): return items.flatMap(targetNames)
        case .namespaceAttr: return []
        }
    }

    /// Re-analyzes the scopes nested in a statement, now that the enclosing scope is complete.
    private static func nested(_ s: JStmt, _ chain: Chain) -> JStmt {
        switch s {
        case let .ifChain(branches, otherwise):
            return .ifChain(branches.map { JIfBranch(test: $0.test, body: $0.body.map { nested($0, chain) }) },
                            otherwise: otherwise.map { nested($0, chain) })
        case let .forLoop(target, iterable, filter, body, otherwise, line):
            return .forLoop(target: target, iterable: iterable, filter: filter,
                            body: analyze(body, parameters: targetNames(target) + ["loop"], extraLoads: [], parent: chain),
                            otherwise: analyze(otherwise, parameters: [], extraLoads: [], parent: chain), line: line)
        case let .setBlock(target, filters, body, line):
            return .setBlock(target, filters: filters, body: analyze(body, parameters: [], extraLoads: [], parent: chain), line: line)
        case .macro(var m):
            m.body = analyze(m.body, parameters: m.params + ["varargs", "kwargs", "caller"], extraLoads: m.defaults, parent: chain)
            return .macro(m)
        case let .with(assignments, body):
            return .with(assignments, body: analyze(body, parameters: assignments.flatMap { targetNames($0.target) },
                                                    extraLoads: [], parent: chain))
        case let .filterBlock(filters, body):
            return .filterBlock(filters, body: analyze(body, parameters: [], extraLoads: [], parent: chain))
        case .generation(let body):
            return .generation(analyze(body, parameters: [], extraLoads: [], parent: chain))
        default:
            return s
        }
    }

    private static func loadArgs(_ args: JCallArgs, _ sym: inout Symbols) {
        for e in args.positional { load(e, &sym) }
        for k in args.keyword { load(k.value, &sym) }
    }

    /// Every name an expression reads.
    private static func load(_ e: JExpr, _ sym: inout Symbols) {
        switch e.kind {
        case .literal: break
        case .name(let n): sym.load(n)
        case .list(let items), .tuple(let items), .concat(let items): for i in items { load(i, &sym) }
        case .dict(let items): for i in items { load(i.key, &sym); load(i.value, &sym) }
        case .getattr(let x, _), .negate(let x), .plus(let x), .not(let x): load(x, &sym)
        case let .getitem(x, k): load(x, &sym); load(k, &sym)
        case let .slice(x, a, b, c):
            load(x, &sym)
            for part in [a, b, c] { if let part { load(part, &sym) } }
        case let .binary(_, a, b), let .and(a, b), let .or(a, b): load(a, &sym); load(b, &sym)
        case let .compare(first, steps): load(first, &sym); for st in steps { load(st.operand, &sym) }
        case let .conditional(test, then, otherwise):
            load(test, &sym); load(then, &sym)
            if let otherwise { load(otherwise, &sym) }
        case let .filter(x, _, args), let .test(x, _, args), let .call(x, args): load(x, &sym); loadArgs(args, &sym)
        }
    }
}
