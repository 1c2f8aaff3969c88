/// GPT-2's byte-level alphabet (`bytes_to_unicode`): every byte gets a printable
/// Unicode scalar, so that vocabulary strings can spell arbitrary bytes.
/// Printable Latin-1 bytes map to themselves; the rest are shifted to U+0100 and up.
enum ByteLevelAlphabet {
    /// Scalar value for each byte.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = UInt32(b)
            } else {
                table[b] = next
                next += 1
            }
        }
        return table
    }()

    /// Byte for each scalar below U+0144 (the highest scalar used), or -1.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s)] = Int16(b) }
        return table
    }()

    /// The raw bytes a byte-level string spells, or nil when a scalar lies outside the alphabet.
    static func bytes(of string: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(string.utf8.count)
        for scalar in string.unicodeScalars {
            let v = Int(scalar.value)
            guard v < byteForScalar.count else { return nil }
            let b = byteForScalar[v]
            guard b >= 0 else { return nil }
            out.append(UInt8(b))
        }
        return out
    }

    /// The byte-level spelling of raw bytes (for messages and tests).
    static func string(of bytes: [UInt8]) -> String {
        var s = String.UnicodeScalarView()
        for b in bytes { if let u = Unicode.Scalar(scalarForByte[Int(b)]) { s.append(u) } }
        return String(s)
    }
}
