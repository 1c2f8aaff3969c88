/// One token of a template, with its offset in the normalized source.
struct JToken: Sendable {
    enum Kind: Sendable, Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        case op(String)
        case eof
    }
    let kind: Kind
    let offset: Int
}

/// Maps source offsets to 1-based line and column.
struct SourceMap: Sendable {
    private let lineStarts: [Int]
    init(_ s: [Unicode.Scalar]) {
        var starts = [0]
        for (i, c) in s.enumerated() where c == "\n" { starts.append(i + 1) }
        lineStarts = starts
    }
    func location(_ offset: Int) -> (line: Int, column: Int) {
        var lo = 0, hi = lineStarts.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if lineStarts[mid] <= offset { lo = mid } else { hi = mid - 1 }
        }
        return (lo + 1, offset - lineStarts[lo] + 1)
    }
}

/// jinja2's lexer with transformers' settings (`trim_blocks`, `lstrip_blocks`),
/// reproducing its whitespace rules:
/// - `{%-`/`{{-`/`{#-` strip all whitespace before the tag, `-%}`/`-}}`/`-#}` all after;
/// - trim_blocks drops one newline after `%}` and `#}` (not `}}`), `+%}` keeps it;
/// - lstrip_blocks drops whitespace between a line start and `{%`/`{#` (not `{{`),
///   `{%+` keeps it.
struct JinjaLexer {
    static let trimBlocks = true
    static let lstripBlocks = true

    let s: [Unicode.Scalar]
    let map: SourceMap
    private var tokens: [JToken] = []
    private var pos = 0
    private var lineStarting = true

    /// Normalizes newlines like jinja2 (`\r\n`, `\r` → `\n`) and drops one trailing
    /// newline (`keep_trailing_newline=False`).
    static func normalize(_ source: String) -> [Unicode.Scalar] {
        var out: [Unicode.Scalar] = []
        out.reserveCapacity(source.unicodeScalars.count)
        var previousCR = false
        for c in source.unicodeScalars {
            if c == "\r" {
                out.append("\n")
                previousCR = true
                continue
            }
            if c == "\n" && previousCR { previousCR = false; continue }
            previousCR = false
            out.append(c)
        }
        if out.last == "\n" { out.removeLast() }
        return out
    }

    init(_ source: String) {
        s = JinjaLexer.normalize(source)
        map = SourceMap(s)
    }

    func syntaxError(_ message: String, at offset: Int) -> ChatTemplateError {
        let loc = map.location(min(offset, max(0, s.count)))
        return .syntax(line: loc.line, column: loc.column, message: message)
    }

    private func at(_ i: Int, _ text: String) -> Bool {
        var j = i
        for c in text.unicodeScalars {
            guard j < s.count, s[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func skipSpace(_ i: Int) -> Int {
        var j = i
        while j < s.count, PyText.isSpace(s[j]) { j += 1 }
        return j
    }

    private enum Tag { case variable, block, comment }

    mutating func tokenize() throws -> [JToken] {
        while pos < s.count {
            // The earliest `{{`, `{%` or `{#`.
            var start = pos
            var tag: Tag?
            while start + 1 < s.count {
                if s[start] == "{" {
                    switch s[start + 1] {
                    case "{": tag = .variable
                    case "%": tag = .block
                    case "#": tag = .comment
                    default: break
                    }
                    if tag != nil { break }
                }
                start += 1
            }
            guard let tag else {
                emitData(pos, s.count)
                pos = s.count
                break
            }
            var afterSign = start + 2
            var sign: Unicode.Scalar?
            if afterSign < s.count, s[afterSign] == "-" || s[afterSign] == "+" {
                sign = s[afterSign]
                afterSign += 1
            }
            let rawEnd = tag == .block ? matchRawBegin(afterSign) : nil
            let textEnd = strippedTextEnd(from: pos, to: start, sign: sign, isVariable: tag == .variable)
            emitData(pos, textEnd)
            if let rawEnd {
                try lexRaw(bodyStart: rawEnd, tagStart: start)
                continue
            }
            switch tag {
            case .comment:
                try lexComment(from: afterSign, tagStart: start)
            case .variable:
                tokens.append(JToken(kind: .variableBegin, offset: start))
                pos = afterSign
                try lexTag(block: false)
            case .block:
                tokens.append(JToken(kind: .blockBegin, offset: start))
                pos = afterSign
                try lexTag(block: true)
            }
        }
        tokens.append(JToken(kind: .eof, offset: s.count))
        return tokens
    }

    /// Where the data before a tag ends once `-` or lstrip_blocks has trimmed it.
    private func strippedTextEnd(from: Int, to: Int, sign: Unicode.Scalar?, isVariable: Bool) -> Int {
        if sign == "-" {
            var end = to
            while end > from, PyText.isSpace(s[end - 1]) { end -= 1 }
            return end
        }
        if sign != "+" && JinjaLexer.lstripBlocks && !isVariable {
            var lineStart = to
            while lineStart > from, s[lineStart - 1] != "\n" { lineStart -= 1 }
            if lineStart > from || lineStarting {
                // jinja2 3.1.6: `whitespace_re.fullmatch(text, l_pos)`, i.e. at least one
                // character and all of them Python whitespace.
                if lineStart < to, s[lineStart..<to].allSatisfy(PyText.isSpace) { return lineStart }
            }
        }
        return to
    }

    private mutating func emitData(_ from: Int, _ to: Int) {
        if to > from { tokens.append(JToken(kind: .data(PyText.string(s[from..<to])), offset: from)) }
    }

    /// `{% raw %}` (with optional `-`/`+` and whitespace), returning where its body starts.
    private func matchRawBegin(_ afterSign: Int) -> Int? {
        var i = skipSpace(afterSign)
        guard at(i, "raw") else { return nil }
        i = skipSpace(i + 3)
        if at(i, "-%}") { return skipSpace(i + 3) }
        if at(i, "%}") { return i + 2 }
        return nil
    }

    private mutating func lexRaw(bodyStart: Int, tagStart: Int) throws {
        var i = bodyStart
        while i + 1 < s.count {
            if s[i] == "{" && s[i + 1] == "%" {
                var j = i + 2
                var sign: Unicode.Scalar?
                if j < s.count, s[j] == "-" || s[j] == "+" { sign = s[j]; j += 1 }
                j = skipSpace(j)
                if at(j, "endraw") {
                    j = skipSpace(j + 6)
                    var end: Int?
                    var endsWithNewline = false
                    if at(j, "+%}") {
                        end = j + 3
                    } else if at(j, "-%}") {
                        end = skipSpace(j + 3)
                        endsWithNewline = end! > j + 3 && s[end! - 1] == "\n"
                    } else if at(j, "%}") {
                        end = j + 2
                        if JinjaLexer.trimBlocks, end! < s.count, s[end!] == "\n" { end! += 1; endsWithNewline = true }
                    }
                    if let end {
                        // The raw-begin match ended at bodyStart; lstrip looks at its last character.
                        lineStarting = bodyStart > tagStart && s[bodyStart - 1] == "\n"
                        let textEnd = strippedTextEnd(from: bodyStart, to: i, sign: sign, isVariable: false)
                        emitData(bodyStart, textEnd)
                        pos = end
                        lineStarting = endsWithNewline
                        return
                    }
                }
            }
            i += 1
        }
        throw syntaxError("Missing end of raw directive", at: tagStart)
    }

    private mutating func lexComment(from: Int, tagStart: Int) throws {
        var i = from
        while i < s.count {
            if at(i, "+#}") {
                pos = i + 3
                lineStarting = false
                return
            }
            if at(i, "-#}") {
                pos = skipSpace(i + 3)
                lineStarting = pos > i + 3 && s[pos - 1] == "\n"
                return
            }
            if at(i, "#}") {
                pos = i + 2
                lineStarting = false
                if JinjaLexer.trimBlocks, pos < s.count, s[pos] == "\n" { pos += 1; lineStarting = true }
                return
            }
            i += 1
        }
        throw syntaxError("Missing end of comment tag", at: tagStart)
    }

    private static let operators: [String] = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexTag(block: Bool) throws {
        var balancing: [Unicode.Scalar] = []
        while true {
            if pos >= s.count { return }  // the parser reports the missing end tag
            if balancing.isEmpty {
                if block {
                    if at(pos, "+%}") {
                        tokens.append(JToken(kind: .blockEnd, offset: pos))
                        pos += 3
                        lineStarting = false
                        return
                    }
                    if at(pos, "-%}") {
                        tokens.append(JToken(kind: .blockEnd, offset: pos))
                        let end = skipSpace(pos + 3)
                        lineStarting = end > pos + 3 && s[end - 1] == "\n"
                        pos = end
                        return
                    }
                    if at(pos, "%}") {
                        tokens.append(JToken(kind: .blockEnd, offset: pos))
                        pos += 2
                        lineStarting = false
                        if JinjaLexer.trimBlocks, pos < s.count, s[pos] == "\n" { pos += 1; lineStarting = true }
                        return
                    }
                } else {
                    if at(pos, "-}}") {
                        tokens.append(JToken(kind: .variableEnd, offset: pos))
                        let end = skipSpace(pos + 3)
                        lineStarting = end > pos + 3 && s[end - 1] == "\n"
                        pos = end
                        return
                    }
                    if at(pos, "}}") {
                        tokens.append(JToken(kind: .variableEnd, offset: pos))
                        pos += 2
                        lineStarting = false
                        return
                    }
                }
            }
            let c = s[pos]
            if PyText.isSpace(c) {
                pos = skipSpace(pos)
                continue
            }
            if let (kind, end) = try lexNumber() {
                tokens.append(JToken(kind: kind, offset: pos))
                pos = end
                continue
            }
            if isNameStart(c) {
                var j = pos + 1
                while j < s.count, isNameContinue(s[j]) { j += 1 }
                tokens.append(JToken(kind: .name(PyText.string(s[pos..<j])), offset: pos))
                pos = j
                continue
            }
            if c == "'" || c == "\"" {
                var j = pos + 1
                while j < s.count, s[j] != c {
                    j += s[j] == "\\" ? 2 : 1
                }
                guard j < s.count else { throw syntaxError("unexpected char \(PyText.repr(String(c))) at \(pos)", at: pos) }
                let value = try JinjaLexer.decodeStringLiteral(Array(s[(pos + 1)..<j]), at: pos, lexer: self)
                tokens.append(JToken(kind: .string(value), offset: pos))
                pos = j + 1
                continue
            }
            guard let op = JinjaLexer.operators.first(where: { at(pos, $0) }) else {
                throw syntaxError("unexpected char \(PyText.repr(String(c))) at \(pos)", at: pos)
            }
            switch op {
            case "(": balancing.append(")")
            case "[": balancing.append("]")
            case "{": balancing.append("}")
            case ")", "]", "}":
                guard let expected = balancing.popLast() else { throw syntaxError("unexpected '\(op)'", at: pos) }
                if String(expected) != op { throw syntaxError("unexpected '\(op)', expected '\(expected)'", at: pos) }
            default: break
            }
            tokens.append(JToken(kind: .op(op), offset: pos))
            pos += op.unicodeScalars.count
        }
    }

    private func isNameStart(_ c: Unicode.Scalar) -> Bool {
        c == "_" || (c.value < 0x80 ? c.properties.isAlphabetic : c.properties.isXIDStart)
    }

    private func isNameContinue(_ c: Unicode.Scalar) -> Bool {
        c == "_" || (c.value < 0x80 ? (c.properties.isAlphabetic || ("0"..."9").contains(c)) : c.properties.isXIDContinue)
    }

    private func isDigit(_ i: Int) -> Bool { i < s.count && ("0"..."9").contains(s[i]) }

    /// `(\d+_)*\d+` at `i`; returns the end.
    private func digitRun(_ i: Int) -> Int? {
        guard isDigit(i) else { return nil }
        var j = i
        while true {
            while isDigit(j) { j += 1 }
            if j + 1 < s.count, s[j] == "_", isDigit(j + 1) { j += 1; continue }
            return j
        }
    }

    /// jinja2's float rule, then its integer rule.
    private func lexNumber() throws -> (JToken.Kind, Int)? {
        guard isDigit(pos) else { return nil }
        // float: (?<!\.)(\d+_)*\d+((\.(\d+_)*\d+)?e[+-]?(\d+_)*\d+|\.(\d+_)*\d+)
        if pos == 0 || s[pos - 1] != "." , let intEnd = digitRun(pos) {
            var end: Int?
            func exponent(_ i: Int) -> Int? {
                guard i < s.count, s[i] == "e" || s[i] == "E" else { return nil }
                var j = i + 1
                if j < s.count, s[j] == "+" || s[j] == "-" { j += 1 }
                return digitRun(j)
            }
            if intEnd < s.count, s[intEnd] == ".", let fracEnd = digitRun(intEnd + 1), let e = exponent(fracEnd) {
                end = e
            } else if let e = exponent(intEnd) {
                end = e
            } else if intEnd < s.count, s[intEnd] == ".", let fracEnd = digitRun(intEnd + 1) {
                end = fracEnd
            }
            if let end {
                let text = PyText.string(s[pos..<end].filter { $0 != "_" })
                guard let value = Double(text) else { throw syntaxError("invalid float literal", at: pos) }
                return (.float(value), end)
            }
        }
        // integer: 0b…, 0o…, 0x…, [1-9](_?\d)*, 0(_?0)*
        if s[pos] == "0", pos + 1 < s.count {
            let radixChar = s[pos + 1].properties.lowercaseMapping
            let radix: Int? = radixChar == "b" ? 2 : radixChar == "o" ? 8 : radixChar == "x" ? 16 : nil
            if let radix {
                var j = pos + 2
                var digits = ""
                while j < s.count {
                    var k = j
                    if s[k] == "_" { k += 1 }
                    guard k < s.count, let d = Int(String(s[k]), radix: radix) else { break }
                    digits += String(d, radix: radix)
                    j = k + 1
                }
                if !digits.isEmpty {
                    guard let value = Int(digits, radix: radix) else { throw syntaxError("integer literal too large", at: pos) }
                    return (.integer(value), j)
                }
            }
        }
        var j = pos
        if s[pos] == "0" {
            j += 1
            while j < s.count {
                if s[j] == "0" { j += 1 } else if s[j] == "_", j + 1 < s.count, s[j + 1] == "0" { j += 2 } else { break }
            }
            return (.integer(0), j)
        }
        j += 1
        while j < s.count {
            if isDigit(j) { j += 1 } else if s[j] == "_", isDigit(j + 1) { j += 2 } else { break }
        }
        let text = PyText.string(s[pos..<j].filter { $0 != "_" })
        guard let value = Int(text) else { throw syntaxError("integer literal too large", at: pos) }
        return (.integer(value), j)
    }

    /// jinja2 decodes string literals with
    /// `value.encode("ascii", "backslashreplace").decode("unicode-escape")`.
    static func decodeStringLiteral(_ body: [Unicode.Scalar], at offset: Int, lexer: JinjaLexer) throws -> String {
        // Step 1: backslashreplace non-ASCII code points.
        var ascii: [UInt8] = []
        ascii.reserveCapacity(body.count)
        for c in body {
            if c.value < 0x80 {
                ascii.append(UInt8(c.value))
            } else {
                let esc = c.value <= 0xFF ? "\\x" + PyText.hex(c.value, width: 2)
                    : c.value <= 0xFFFF ? "\\u" + PyText.hex(c.value, width: 4)
                    : "\\U" + PyText.hex(c.value, width: 8)
                ascii += Array(esc.utf8)
            }
        }
        // Step 2: Python's unicode-escape codec.
        var out = String.UnicodeScalarView()
        var i = 0
        func fail(_ m: String) -> ChatTemplateError { lexer.syntaxError(m, at: offset) }
        func hexValue(_ count: Int) throws -> UInt32 {
            guard i + count <= ascii.count,
                  ascii[i..<(i + count)].allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x66) }),
                  let v = UInt32(String(decoding: ascii[i..<(i + count)], as: UTF8.self), radix: 16)
            else { throw fail("truncated \\\(count == 2 ? "xXX" : count == 4 ? "uXXXX" : "UXXXXXXXX") escape") }
            i += count
            return v
        }
        func append(_ v: UInt32) throws {
            guard let sc = Unicode.Scalar(v) else { throw fail("string literal contains an unrepresentable code point") }
            out.append(sc)
        }
        while i < ascii.count {
            let b = ascii[i]
            i += 1
            guard b == UInt8(ascii: "\\") else { out.append(Unicode.Scalar(b)); continue }
            guard i < ascii.count else { throw fail("\\ at end of string") }
            let e = ascii[i]
            i += 1
            switch e {
            case UInt8(ascii: "\n"): break
            case UInt8(ascii: "\\"): out.append("\\")
            case UInt8(ascii: "'"): out.append("'")
            case UInt8(ascii: "\""): out.append("\"")
            case UInt8(ascii: "a"): out.append("\u{07}")
            case UInt8(ascii: "b"): out.append("\u{08}")
            case UInt8(ascii: "f"): out.append("\u{0C}")
            case UInt8(ascii: "n"): out.append("\n")
            case UInt8(ascii: "r"): out.append("\r")
            case UInt8(ascii: "t"): out.append("\t")
            case UInt8(ascii: "v"): out.append("\u{0B}")
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var v = UInt32(e - UInt8(ascii: "0"))
                var n = 1
                while n < 3, i < ascii.count, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(ascii[i]) {
                    v = v * 8 + UInt32(ascii[i] - UInt8(ascii: "0"))
                    i += 1
                    n += 1
                }
                try append(v)
            case UInt8(ascii: "x"): try append(try hexValue(2))
            case UInt8(ascii: "u"): try append(try hexValue(4))
            case UInt8(ascii: "U"): try append(try hexValue(8))
            case UInt8(ascii: "N"): throw fail("\\N{...} escapes are not supported")
            default:
                out.append("\\")
                out.append(Unicode.Scalar(e))
            }
        }
        return String(out)
    }
}
