/// Python `str` operations on Unicode scalars.
///
/// Python strings are sequences of code points, Swift `String` is a sequence of
/// grapheme clusters compared by canonical equivalence. Templates must behave like
/// Python (lengths, slices, `==`), so everything here works on scalars and compares
/// by code point, never with `String ==`.
enum PyText {
    /// `str.isspace()` for one code point (Unicode White_Space plus the
    /// separators CPython treats as whitespace, \x1c-\x1f).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    static func scalars(_ s: String) -> [Unicode.Scalar] { Array(s.unicodeScalars) }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }

    /// Code-point equality (Python `==` on str).
    static func equal(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }

    /// Code-point order (Python `<` on str); UTF-8 byte order is code-point order.
    static func less(_ a: String, _ b: String) -> Bool { a.utf8.lexicographicallyPrecedes(b.utf8) }

    static func count(_ s: String) -> Int { s.unicodeScalars.count }

    /// `str.strip/lstrip/rstrip(chars)`; `chars == nil` strips whitespace.
    static func strip(_ s: String, chars: String?, left: Bool, right: Bool) -> String {
        let a = scalars(s)
        let set: Set<UInt32>? = chars.map { Set($0.unicodeScalars.map(\.value)) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c.value) } ?? isSpace(c) }
        var lo = 0, hi = a.count
        if left { while lo < hi, strippable(a[lo]) { lo += 1 } }
        if right { while hi > lo, strippable(a[hi - 1]) { hi -= 1 } }
        return string(a[lo..<hi])
    }

    static func find(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int) -> Int? {
        if needle.isEmpty { return from <= hay.count ? from : nil }
        if hay.count < needle.count { return nil }
        var i = from
        while i + needle.count <= hay.count {
            if hay[i] == needle[0], hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    static func contains(_ hay: String, _ needle: String) -> Bool {
        find(scalars(hay), scalars(needle), from: 0) != nil
    }

    static func hasPrefix(_ s: String, _ p: String) -> Bool { s.utf8.starts(with: p.utf8) }
    static func hasSuffix(_ s: String, _ p: String) -> Bool { s.utf8.reversed().starts(with: p.utf8.reversed()) }

    /// `str.replace(old, new, count)`; count < 0 means all.
    static func replace(_ s: String, _ old: String, _ new: String, count: Int) -> String {
        let a = scalars(s), o = scalars(old), n = scalars(new)
        var out: [Unicode.Scalar] = []
        var done = 0
        if o.isEmpty {
            // Python inserts `new` before every code point and at the end.
            for c in a {
                if count < 0 || done < count { out += n; done += 1 }
                out.append(c)
            }
            if count < 0 || done < count { out += n }
            return string(out)
        }
        var i = 0
        while i < a.count {
            if count >= 0 && done >= count { break }
            guard let j = find(a, o, from: i) else { break }
            out += a[i..<j]
            out += n
            i = j + o.count
            done += 1
        }
        out += a[i...]
        return string(out)
    }

    /// `str.split(sep, maxsplit)`.
    static func split(_ s: String, sep: String?, maxsplit: Int) throws -> [String] {
        let a = scalars(s)
        var parts: [String] = []
        guard let sep else {
            var i = 0
            var splits = 0
            while i < a.count {
                while i < a.count, isSpace(a[i]) { i += 1 }
                if i >= a.count { break }
                if maxsplit >= 0 && splits >= maxsplit {
                    var end = a.count
                    while end > i, isSpace(a[end - 1]) { end -= 1 }
                    parts.append(string(a[i..<end]))
                    return parts
                }
                var j = i
                while j < a.count, !isSpace(a[j]) { j += 1 }
                parts.append(string(a[i..<j]))
                splits += 1
                i = j
            }
            return parts
        }
        let p = scalars(sep)
        if p.isEmpty { throw JinjaFailure("empty separator") }
        var i = 0
        var splits = 0
        while maxsplit < 0 || splits < maxsplit, let j = find(a, p, from: i) {
            parts.append(string(a[i..<j]))
            i = j + p.count
            splits += 1
        }
        parts.append(string(a[i...]))
        return parts
    }

    /// `str.rsplit(sep, maxsplit)`.
    static func rsplit(_ s: String, sep: String?, maxsplit: Int) throws -> [String] {
        if maxsplit < 0 { return try split(s, sep: sep, maxsplit: -1) }
        // Split from the right by reversing: separators are matched reversed too.
        let rev = string(scalars(s).reversed())
        let revSep = sep.map { string(scalars($0).reversed()) }
        let parts = try split(rev, sep: revSep, maxsplit: maxsplit)
        return parts.reversed().map { string(scalars($0).reversed()) }
    }

    static func upper(_ s: String) -> String {
        var out = ""
        for c in s.unicodeScalars { out += c.properties.uppercaseMapping }
        return out
    }

    static func lower(_ s: String) -> String {
        let a = scalars(s)
        var out = ""
        for i in a.indices { out += lowerMapping(a, i) }
        return out
    }

    /// CPython's `lower_ucs4`: full lower-case mapping, with capital sigma becoming
    /// final sigma after a cased letter that no cased letter follows.
    static func lowerMapping(_ a: [Unicode.Scalar], _ i: Int) -> String {
        guard a[i] == "\u{03A3}" else { return a[i].properties.lowercaseMapping }
        var j = i - 1
        while j >= 0, a[j].properties.isCaseIgnorable { j -= 1 }
        var finalSigma = j >= 0 && a[j].properties.isCased
        if finalSigma {
            var k = i + 1
            while k < a.count, a[k].properties.isCaseIgnorable { k += 1 }
            finalSigma = k == a.count || !a[k].properties.isCased
        }
        return finalSigma ? "\u{03C2}" : "\u{03C3}"
    }

    /// `str.title()`: title-case after an uncased character, lower-case after a cased one.
    static func title(_ s: String) -> String {
        let a = scalars(s)
        var out = ""
        var previousCased = false
        for i in a.indices {
            out += previousCased ? lowerMapping(a, i) : a[i].properties.titlecaseMapping
            previousCased = a[i].properties.isCased
        }
        return out
    }

    /// `str.capitalize()` (Python ≥ 3.8: first character title-cased, the rest lower-cased).
    static func capitalize(_ s: String) -> String {
        let a = scalars(s)
        var out = ""
        for i in a.indices { out += i == 0 ? a[i].properties.titlecaseMapping : lowerMapping(a, i) }
        return out
    }

    /// Jinja's `title` filter: split on runs of `[-\s({\[<]`, then `w[0].upper() + w[1:].lower()`.
    static func jinjaTitle(_ s: String) -> String {
        func isSep(_ c: Unicode.Scalar) -> Bool { isSpace(c) || "-({[<".unicodeScalars.contains(c) }
        let a = scalars(s)
        var out = ""
        var i = 0
        while i < a.count {
            var j = i
            let sep = isSep(a[i])
            while j < a.count, isSep(a[j]) == sep { j += 1 }
            let word = a[i..<j]
            if let first = word.first {
                out += first.properties.uppercaseMapping
                // `item[1:].lower()` sees only the rest of the word.
                out += lower(string(word.dropFirst()))
            }
            i = j
        }
        return out
    }

    /// `str.islower()` / `str.isupper()`.
    static func isCase(_ s: String, lower: Bool) -> Bool {
        var cased = false
        for c in s.unicodeScalars {
            let p = c.properties
            if p.generalCategory == .titlecaseLetter { return false }
            if lower {
                if p.isUppercase { return false }
                if p.isLowercase { cased = true }
            } else {
                if p.isLowercase { return false }
                if p.isUppercase { cased = true }
            }
        }
        return cased
    }

    /// `str.isprintable()` for one code point.
    static func isPrintable(_ c: Unicode.Scalar) -> Bool {
        if c == " " { return true }
        switch c.properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator, .spaceSeparator:
            return false
        default:
            return true
        }
    }

    static func hex(_ v: UInt32, width: Int) -> String {
        let h = String(v, radix: 16)
        return String(repeating: "0", count: max(0, width - h.count)) + h
    }

    /// `repr(str)`.
    static func repr(_ s: String) -> String {
        let hasSingle = s.unicodeScalars.contains("'")
        let hasDouble = s.unicodeScalars.contains("\"")
        let quote: Unicode.Scalar = (hasSingle && !hasDouble) ? "\"" : "'"
        var out = String(quote)
        for c in s.unicodeScalars {
            switch c {
            case quote, "\\": out += "\\" + String(c)
            case "\t": out += "\\t"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            default:
                if c.value < 0x20 || c.value == 0x7F {
                    out += "\\x" + hex(c.value, width: 2)
                } else if c.value < 0x7F || isPrintable(c) {
                    out.unicodeScalars.append(c)
                } else if c.value <= 0xFF {
                    out += "\\x" + hex(c.value, width: 2)
                } else if c.value <= 0xFFFF {
                    out += "\\u" + hex(c.value, width: 4)
                } else {
                    out += "\\U" + hex(c.value, width: 8)
                }
            }
        }
        out.unicodeScalars.append(quote)
        return out
    }

    /// `repr(float)` / `str(float)`: shortest round-trip digits, Python's layout
    /// (exponent form when the decimal exponent is below -4 or above 16).
    static func floatRepr(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description is also the shortest round-trip representation;
        // only its layout differs, so take its digits and exponent.
        var text = Substring("\(x.magnitude)")
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = text[..<e]
        }
        let pieces = text.split(separator: ".", omittingEmptySubsequences: false)
        let intPart = pieces[0]
        let fracPart = pieces.count > 1 ? pieces[1] : ""
        var digits = Array(intPart + fracPart)
        var decpt = intPart.count + exponent
        while digits.first == "0" { digits.removeFirst(); decpt -= 1 }
        while digits.last == "0" { digits.removeLast() }
        if digits.isEmpty { return x.sign == .minus ? "-0.0" : "0.0" }
        var out = x.sign == .minus ? "-" : ""
        if decpt <= -4 || decpt > 16 {
            out.append(digits[0])
            if digits.count > 1 { out += "." + String(digits[1...]) }
            let e = decpt - 1
            out += e < 0 ? "e-" : "e+"
            let mag = String(abs(e))
            out += (mag.count < 2 ? "0" : "") + mag
        } else if decpt <= 0 {
            out += "0." + String(repeating: "0", count: -decpt) + String(digits)
        } else if decpt >= digits.count {
            out += String(digits) + String(repeating: "0", count: decpt - digits.count) + ".0"
        } else {
            out += String(digits[..<decpt]) + "." + String(digits[decpt...])
        }
        return out
    }

    /// `str.splitlines(keepends)`.
    static func splitlines(_ s: String, keepEnds: Bool) -> [String] {
        let a = scalars(s)
        var out: [String] = []
        var start = 0, i = 0
        while i < a.count {
            let v = a[i].value
            let isBreak = v == 0x0A || v == 0x0D || v == 0x0B || v == 0x0C || (0x1C...0x1E).contains(v)
                || v == 0x85 || v == 0x2028 || v == 0x2029
            if isBreak {
                var end = i + 1
                if v == 0x0D, end < a.count, a[end] == "\n" { end += 1 }
                out.append(string(a[start..<(keepEnds ? end : i)]))
                start = end
                i = end
            } else {
                i += 1
            }
        }
        if start < a.count { out.append(string(a[start...])) }
        return out
    }
}
