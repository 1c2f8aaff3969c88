import Foundation

/// One turn of a conversation, as passed to a chat template (`message.role`,
/// `message.content`).
public struct ChatMessage: Sendable, Codable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// The prompt format a template produces, recognised from the template text
/// (shown by `langtune inspect`; rendering never depends on it).
public enum ChatTemplateFamily: String, Sendable {
    case chatml, llama3, llama2, mistral, gemma, unknown

    /// Looks for each format's distinctive markers.
    public static func detect(_ source: String) -> ChatTemplateFamily {
        if source.contains("<|start_header_id|>") { return .llama3 }
        if source.contains("<|im_start|>") { return .chatml }
        if source.contains("<start_of_turn>") { return .gemma }
        if source.contains("[INST]") {
            return source.contains("<<SYS>>") ? .llama2 : .mistral
        }
        return .unknown
    }
}

/// Options beyond the messages and special tokens.
public struct ChatTemplateRenderOptions: Sendable {
    /// Tool schemas (`tools`); nil passes `None`, as transformers does when no tools are given.
    public var tools: [TemplateJSON]?
    /// Documents for retrieval templates (`documents`); nil passes `None`.
    public var documents: [TemplateJSON]?
    /// Further template variables (transformers' `**kwargs`, e.g. `date_string`).
    public var variables: [String: TemplateJSON]
    /// The clock for `strftime_now`; nil means the current time.
    public var now: Date?
    /// The zone `strftime_now` formats in (Python's naive local time).
    public var timeZone: TimeZone

    public init(tools: [TemplateJSON]? = nil, documents: [TemplateJSON]? = nil,
                variables: [String: TemplateJSON] = [:], now: Date? = nil, timeZone: TimeZone = .current) {
        self.tools = tools
        self.documents = documents
        self.variables = variables
        self.now = now
        self.timeZone = timeZone
    }
}

/// A model's own Jinja chat template, compiled once and rendered like
/// transformers' `apply_chat_template` (jinja2 ImmutableSandboxedEnvironment with
/// `trim_blocks`, `lstrip_blocks`, loop controls, `raise_exception`, `strftime_now`
/// and a `tojson` that keeps non-ASCII text).
public struct ChatTemplate: Sendable {
    /// The template text as given.
    public let source: String
    /// The prompt format recognised from the text.
    public let family: ChatTemplateFamily
    private let body: JBlock

    /// Compiles `source`; throws `ChatTemplateError.syntax` with line and column on bad input.
    public init(_ source: String) throws {
        self.source = source
        family = ChatTemplateFamily.detect(source)
        var parser = try JinjaParser(source: source)
        body = try parser.parseTemplate()
    }

    /// Renders the conversation. Throws `ChatTemplateError.raised` when the template
    /// rejects it via `raise_exception`, `.runtime` for other failures.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String) throws -> String {
        try render(messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken, eosToken: eosToken,
                   options: ChatTemplateRenderOptions())
    }

    /// Renders with tools, documents, extra variables or a fixed clock.
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String, eosToken: String,
                       options: ChatTemplateRenderOptions) throws -> String {
        var vars: [String: JValue] = [:]
        for (name, value) in options.variables { vars[name] = value.jinjaValue }
        vars["messages"] = .list(messages.map {
            .dict(JDict([(.string("role"), .string($0.role)), (.string("content"), .string($0.content))]))
        })
        vars["tools"] = options.tools.map { .list($0.map(\.jinjaValue)) } ?? JValue.none
        vars["documents"] = options.documents.map { .list($0.map(\.jinjaValue)) } ?? JValue.none
        vars["add_generation_prompt"] = .bool(addGenerationPrompt)
        vars["bos_token"] = .string(bosToken)
        vars["eos_token"] = .string(eosToken)
        return try render(variables: vars, now: options.now ?? Date(), timeZone: options.timeZone)
    }

    /// Renders with exactly the given top-level variables.
    func render(variables: [String: JValue], now: Date, timeZone: TimeZone) throws -> String {
        let interp = JinjaInterpreter(now: now, timeZone: timeZone)
        defer { interp.releaseScopes() }
        let context = JFrame(parent: interp.makeGlobals())
        context.vars = variables
        // Top-level assignments live in a scope of their own so that names jinja2 starts
        // as undefined there do not erase the caller's variables.
        let root = interp.scope(body, parent: context)
        var out = ""
        do {
            _ = try interp.execute(body.stmts, root, &out)
        } catch let failure as JinjaFailure {
            throw ChatTemplateError.runtime(line: interp.line, message: failure.message)
        }
        return out
    }
}
