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

    /// Appends the raw bytes a byte-level string spells to `out`; false (with `out` in an
    /// unspecified state) when a scalar lies outside the alphabet.
    static func appendBytes(of string: String, to out: inout [UInt8]) -> Bool {
        var string = string
        return string.withUTF8 { utf8 in
            byteForScalar.withUnsafeBufferPointer { table in
                var i = 0
                let n = utf8.count
                while i < n {
                    let b0 = utf8[i]
                    var v: Int
                    if b0 < 0x80 {
                        v = Int(b0)
                        i += 1
                    } else if b0 & 0xE0 == 0xC0, i + 1 < n {
                        v = Int(b0 & 0x1F) << 6 | Int(utf8[i + 1] & 0x3F)
                        i += 2
                    } else {
                        return false  // three- and four-byte scalars lie above U+0143
                    }
                    guard v < table.count else { return false }
                    let b = table[v]
                    guard b >= 0 else { return false }
                    out.append(UInt8(b))
                }
                return true
            }
        }
    }

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
