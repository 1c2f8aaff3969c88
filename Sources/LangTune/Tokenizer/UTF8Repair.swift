/// Lossy UTF-8 decoding as Rust's `String::from_utf8_lossy` (and Python's
/// `errors="replace"`) do it: each maximal ill-formed subpart becomes one U+FFFD.
enum UTF8Repair {
    /// Length of the well-formed sequence at `i`, or, when ill-formed, the negated length
    /// of its maximal valid prefix (at least 1). `incomplete` is set when the prefix
    /// was cut short by the end of the buffer rather than by a wrong byte.
    @inline(__always)
    static func sequence(_ b: UnsafeBufferPointer<UInt8>, _ i: Int, incomplete: inout Bool) -> Int {
        incomplete = false
        let b0 = b[i]
        if b0 < 0x80 { return 1 }
        let need: Int
        var lower: UInt8 = 0x80, upper: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lower = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; upper = 0x9F
        case 0xF0: need = 3; lower = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; upper = 0x8F
        default: return -1
        }
        var j = 1
        while j <= need {
            guard i + j < b.count else {
                incomplete = true
                return -j
            }
            let c = b[i + j]
            if j == 1 {
                if c < lower || c > upper { return -1 }
            } else if c < 0x80 || c > 0xBF {
                return -j
            }
            j += 1
        }
        return need + 1
    }

    /// Decodes `bytes[..<end]` into `out`, replacing ill-formed subparts. When `holdIncomplete`
    /// is set, a sequence cut short by the end is not decoded; returns where decoding stopped.
    @discardableResult
    static func decode(_ b: UnsafeBufferPointer<UInt8>, holdIncomplete: Bool, into out: inout String) -> Int {
        var valid: [UInt8] = []
        valid.reserveCapacity(b.count)
        var i = 0
        var incomplete = false
        while i < b.count {
            let n = sequence(b, i, incomplete: &incomplete)
            if n > 0 {
                for k in i..<(i + n) { valid.append(b[k]) }
                i += n
            } else {
                if incomplete && holdIncomplete { break }
                valid.append(contentsOf: [0xEF, 0xBF, 0xBD])
                i += -n
            }
        }
        out += String(decoding: valid, as: UTF8.self)
        return i
    }

    static func string(from bytes: [UInt8]) -> String {
        var s = ""
        bytes.withUnsafeBufferPointer { _ = decode($0, holdIncomplete: false, into: &s) }
        return s
    }
}
