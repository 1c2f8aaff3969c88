/// Where a grounded answer may start: a letter, digit or mark whose previous character is not one
/// (or the start of the text), and every ideograph (Chinese and Japanese write no spaces: each
/// character may start an answer). `GroundedSpan` marks these places in its text with a byte that
/// never occurs in UTF-8 and applies the same rule to the answer, so a span can only begin at one.
enum WordStart {
    /// 0xFF is never a byte of UTF-8.
    static let marker: UInt8 = 0xFF

    enum Kind: UInt8, Sendable {
        case none, other, word, ideograph
    }

    static func kind(_ c: Unicode.Scalar) -> Kind {
        let p = c.properties
        if p.isIdeographic { return .ideograph }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
             .decimalNumber, .letterNumber, .otherNumber, .nonspacingMark, .spacingMark, .enclosingMark:
            return .word
        default:
            return .other
        }
    }

    /// Whether a character of `kind` starts a word after one of `previous` (`.none`: nothing before).
    static func starts(_ kind: Kind, after previous: Kind) -> Bool {
        switch kind {
        case .ideograph: return true
        case .word: return previous != .word
        case .other, .none: return false
        }
    }

    /// The text's UTF-8 bytes with `marker` before every word start.
    static func marked(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count * 5 / 4)
        var previous = Kind.none
        for c in text.unicodeScalars {
            let kind = kind(c)
            if starts(kind, after: previous) { out.append(marker) }
            out.append(contentsOf: String(c).utf8)
            previous = kind
        }
        return out
    }

    /// The scalar of `count` UTF-8 bytes packed little-end first in `bytes`, or nil when they are not one.
    static func scalar(_ bytes: UInt32, count: Int) -> Unicode.Scalar? {
        func b(_ i: UInt32) -> UInt32 { (bytes >> (8 * i)) & 0xFF }
        let v: UInt32
        switch count {
        case 1: v = b(0)
        case 2: v = (b(0) & 0x1F) << 6 | (b(1) & 0x3F)
        case 3: v = (b(0) & 0x0F) << 12 | (b(1) & 0x3F) << 6 | (b(2) & 0x3F)
        case 4: v = (b(0) & 0x07) << 18 | (b(1) & 0x3F) << 12 | (b(2) & 0x3F) << 6 | (b(3) & 0x3F)
        default: return nil
        }
        return Unicode.Scalar(v)
    }
}
