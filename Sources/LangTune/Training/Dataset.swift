import Foundation

/// The on-disk layouts `train` and `eval` read.
public enum DatasetFormat: String, Sendable, CaseIterable, Codable {
    /// SQuAD JSON: `{"data": [{"paragraphs": [{"context", "qas": [{"id", "question", "answers": [{"text", "answer_start"}]}]}]}]}`.
    case squad
    /// Alpaca JSON array or JSONL: `{"instruction", "input", "output"}`.
    case alpaca
    /// JSONL chat transcripts: `{"messages": [{"role", "content"}, ...]}`.
    case messages
    /// Plain text, for continued pre-training: documents separated by blank lines.
    case text

    /// Guesses the format from the file name and first bytes.
    public static func detect(path: String, head: Data) -> DatasetFormat {
        let lower = path.lowercased()
        if lower.hasSuffix(".txt") || lower.hasSuffix(".md") { return .text }
        let text = String(decoding: head.prefix(4096), as: UTF8.self)
        if text.contains("\"paragraphs\"") || text.contains("\"qas\"") { return .squad }
        if text.contains("\"messages\"") { return .messages }
        if text.contains("\"instruction\"") { return .alpaca }
        return lower.hasSuffix(".json") || lower.hasSuffix(".jsonl") ? .alpaca : .text
    }
}

/// One SQuAD-style question with what is needed to trim its context later.
public struct QAItem: Sendable, Equatable {
    public var id: String
    public var context: String
    public var question: String
    /// All reference answers; the first is the training target.
    public var answers: [String]
    /// Character offset (in Unicode scalars) of the first answer in the context, if known.
    public var answerStart: Int?
}

/// One training or evaluation example before tokenization.
public struct RawExample: Sendable, Equatable {
    public enum Body: Sendable, Equatable {
        /// A question about a passage (SQuAD): rendered with a prompt template.
        case qa(QAItem)
        /// A conversation whose assistant turns are the targets.
        case chat([ChatMessage])
        /// Plain text: every token is a target.
        case text(String)
    }
    public var body: Body
    /// `file:line` (or `file: item N`) for error messages and reports.
    public var origin: String
}

/// A dataset file that cannot be used, naming the file, the place and the problem.
public struct DatasetError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let location: String?
    public let problem: String
    public init(file: String, location: String? = nil, _ problem: String) {
        self.file = file
        self.location = location
        self.problem = problem
    }
    public var description: String { "\(file)\(location.map { ":" + $0 } ?? ""): \(problem)" }
}

/// Reads training and evaluation files in the formats of `DatasetFormat`.
public enum DatasetReader {
    /// Reads every example of `path`. `format` nil means detect.
    public static func read(_ path: String, format: DatasetFormat? = nil) throws -> [RawExample] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(file: path, "cannot read the file (missing or unreadable)")
        }
        let fmt = format ?? DatasetFormat.detect(path: path, head: data)
        let examples: [RawExample]
        switch fmt {
        case .squad: examples = try readSQuAD(data, path)
        case .alpaca: examples = try readAlpaca(data, path)
        case .messages: examples = try readMessages(data, path)
        case .text: examples = try readText(data, path)
        }
        guard !examples.isEmpty else { throw DatasetError(file: path, "the dataset has no examples (format \(fmt.rawValue))") }
        return examples
    }

    static func json(_ data: Data, _ path: String, _ location: String? = nil) throws -> Any {
        do { return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) } catch {
            throw DatasetError(file: path, location: location, "invalid JSON (\(describe(error)))")
        }
    }

    static func describe(_ error: Error) -> String {
        let ns = error as NSError
        return (ns.userInfo[NSDebugDescriptionErrorKey] as? String) ?? ns.localizedDescription
    }

    /// Splits JSONL into (line number, bytes) of non-blank lines.
    static func jsonLines(_ data: Data) -> [(Int, Data)] {
        var out: [(Int, Data)] = []
        var lineNo = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNo += 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            out.append((lineNo, Data(line)))
        }
        return out
    }

    /// Whether the file is a JSON array/object rather than JSON Lines.
    static func isWholeJSON(_ data: Data) -> Bool {
        guard let first = data.first(where: { !($0 == 32 || $0 == 9 || $0 == 10 || $0 == 13) }) else { return false }
        if first == UInt8(ascii: "[") { return true }
        // One object spanning several lines is a JSON document, one per line is JSONL.
        return first == UInt8(ascii: "{") && jsonLines(data).count > 1
            && (try? JSONSerialization.jsonObject(with: data)) != nil
    }

    static func string(_ obj: [String: Any], _ key: String, _ path: String, _ loc: String, required: Bool = true) throws -> String? {
        guard let v = obj[key], !(v is NSNull) else {
            if required { throw DatasetError(file: path, location: loc, "missing field \"\(key)\"") }
            return nil
        }
        guard let s = v as? String else { throw DatasetError(file: path, location: loc, "field \"\(key)\" is not a string") }
        return s
    }

    static func readSQuAD(_ data: Data, _ path: String) throws -> [RawExample] {
        guard let root = try json(data, path) as? [String: Any] else {
            throw DatasetError(file: path, "SQuAD format needs a JSON object with \"data\"")
        }
        guard let articles = root["data"] as? [[String: Any]] else {
            throw DatasetError(file: path, "missing or malformed \"data\" array")
        }
        var out: [RawExample] = []
        for (ai, article) in articles.enumerated() {
            guard let paragraphs = article["paragraphs"] as? [[String: Any]] else {
                throw DatasetError(file: path, location: "data[\(ai)]", "missing \"paragraphs\" array")
            }
            for (pi, p) in paragraphs.enumerated() {
                let loc = "data[\(ai)].paragraphs[\(pi)]"
                let context = try string(p, "context", path, loc)!
                guard let qas = p["qas"] as? [[String: Any]] else {
                    throw DatasetError(file: path, location: loc, "missing \"qas\" array")
                }
                for (qi, qa) in qas.enumerated() {
                    let qloc = "\(loc).qas[\(qi)]"
                    let question = try string(qa, "question", path, qloc)!
                    let id = (qa["id"] as? String) ?? (qa["id"].map { "\($0)" } ?? "\(ai)-\(pi)-\(qi)")
                    let answers = (qa["answers"] as? [[String: Any]]) ?? []
                    let texts = answers.compactMap { $0["text"] as? String }
                    guard let first = texts.first, !first.isEmpty else {
                        throw DatasetError(file: path, location: qloc, "question \(id) has no answer text")
                    }
                    // TQuAD stores answer_start as a string; accept both.
                    var start: Int? = nil
                    if let a = answers.first?["answer_start"] {
                        if let n = a as? Int { start = n } else if let s = a as? String { start = Int(s.trimmingCharacters(in: .whitespaces)) }
                    }
                    out.append(RawExample(body: .qa(QAItem(id: id, context: context, question: question, answers: texts,
                                                          answerStart: start)), origin: "\(path):\(qloc)"))
                }
            }
        }
        return out
    }

    static func readAlpaca(_ data: Data, _ path: String) throws -> [RawExample] {
        var records: [(String, [String: Any])] = []
        if isWholeJSON(data) {
            guard let arr = try json(data, path) as? [Any] else {
                throw DatasetError(file: path, "Alpaca format needs a JSON array of objects or JSON Lines")
            }
            for (i, item) in arr.enumerated() {
                guard let obj = item as? [String: Any] else { throw DatasetError(file: path, location: "item \(i)", "not a JSON object") }
                records.append(("item \(i)", obj))
            }
        } else {
            for (line, bytes) in jsonLines(data) {
                guard let obj = try json(bytes, path, "line \(line)") as? [String: Any] else {
                    throw DatasetError(file: path, location: "line \(line)", "not a JSON object")
                }
                records.append(("line \(line)", obj))
            }
        }
        return try records.map { loc, obj in
            let instruction = try string(obj, "instruction", path, loc)!
            let input = try string(obj, "input", path, loc, required: false) ?? ""
            let output = try string(obj, "output", path, loc)!
            if output.isEmpty { throw DatasetError(file: path, location: loc, "empty \"output\"") }
            let user = input.isEmpty ? instruction : instruction + "\n\n" + input
            return RawExample(body: .chat([ChatMessage(role: "user", content: user), ChatMessage(role: "assistant", content: output)]),
                              origin: "\(path):\(loc)")
        }
    }

    static func readMessages(_ data: Data, _ path: String) throws -> [RawExample] {
        try jsonLines(data).map { line, bytes in
            let loc = "line \(line)"
            guard let obj = try json(bytes, path, loc) as? [String: Any] else {
                throw DatasetError(file: path, location: loc, "not a JSON object")
            }
            guard let msgs = obj["messages"] as? [Any] else { throw DatasetError(file: path, location: loc, "missing \"messages\" array") }
            var messages: [ChatMessage] = []
            for (i, m) in msgs.enumerated() {
                guard let mo = m as? [String: Any] else { throw DatasetError(file: path, location: loc, "messages[\(i)] is not an object") }
                let role = try string(mo, "role", path, "\(loc) messages[\(i)]")!
                let content = try string(mo, "content", path, "\(loc) messages[\(i)]")!
                guard ["system", "user", "assistant"].contains(role) else {
                    throw DatasetError(file: path, location: loc, "messages[\(i)] has unknown role \"\(role)\"")
                }
                messages.append(ChatMessage(role: role, content: content))
            }
            guard messages.contains(where: { $0.role == "assistant" }) else {
                throw DatasetError(file: path, location: loc, "no assistant message to learn from")
            }
            return RawExample(body: .chat(messages), origin: "\(path):\(loc)")
        }
    }

    static func readText(_ data: Data, _ path: String) throws -> [RawExample] {
        guard let text = String(data: data, encoding: .utf8) else { throw DatasetError(file: path, "not valid UTF-8 text") }
        var out: [RawExample] = []
        var current: [Substring] = []
        var startLine = 1
        var lineNo = 0
        func flush() {
            let doc = current.joined(separator: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
            if !doc.isEmpty { out.append(RawExample(body: .text(doc), origin: "\(path):line \(startLine)")) }
            current = []
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNo += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty { flush(); startLine = lineNo + 1 } else { current.append(line) }
        }
        flush()
        return out
    }
}
