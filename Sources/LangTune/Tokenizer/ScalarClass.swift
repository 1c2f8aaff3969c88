/// The character classes the pre-tokenizer patterns test, as bit flags:
/// `\p{L}`, `\p{N}`, `\s` (Unicode White_Space, as Oniguruma and Rust's regex use it),
/// and `[\r\n]`. A scalar with none of the bits is "other" (`[^\s\p{L}\p{N}]`).
enum ScalarClass {
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let space: UInt8 = 4
    static let newline: UInt8 = 8  // always together with `space`

    static func compute(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        if value == 0x0A || value == 0x0D { return space | newline }
        let p = scalar.properties
        if p.isWhitespace { return space }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return number
        default:
            return 0
        }
    }

    /// Classes of the Basic Multilingual Plane, computed once; other planes are computed on demand.
    static let bmp: [UInt8] = (0..<0x10000).map { compute(UInt32($0)) }

    @inline(__always)
    static func of(_ value: UInt32) -> UInt8 {
        value < 0x10000 ? bmp.withUnsafeBufferPointer { $0[Int(value)] } : compute(value)
    }

    /// `\w` as Rust's regex crate defines it (Alphabetic, marks, decimal digits,
    /// connector punctuation, Join_Control); used for `single_word` added tokens.
    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool {
        let p = scalar.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }
}
