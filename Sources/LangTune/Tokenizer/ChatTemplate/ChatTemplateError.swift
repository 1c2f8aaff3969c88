/// A failure to compile or render a chat template.
///
/// Syntax errors carry the 1-based line and column of the offending token, so a
/// user can find the problem in a `tokenizer_config.json` or GGUF template.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The template does not parse (or uses a construct this interpreter leaves out).
    case syntax(line: Int, column: Int, message: String)
    /// The template called `raise_exception(message)`, which is how templates reject
    /// conversations they cannot format (for example non-alternating roles).
    case raised(message: String)
    /// Rendering failed: an undefined value was used, a type mismatch, and so on.
    case runtime(line: Int, message: String)

    public var description: String {
        switch self {
        case let .syntax(line, column, message):
            return "chat template syntax error at line \(line), column \(column): \(message)"
        case let .raised(message):
            return "template raised: \(message)"
        case let .runtime(line, message):
            return "chat template error at line \(line): \(message)"
        }
    }
}

/// A failure inside value operations; the interpreter adds the template line.
struct JinjaFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
