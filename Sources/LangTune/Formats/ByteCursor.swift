/// Bounds-checked little-endian reads from untrusted bytes.
///
/// Every read checks the remaining length first, with arithmetic that cannot
/// overflow, so a corrupt length field turns into a `FormatError` naming the
/// file instead of a trap or an out-of-bounds read.
struct ByteCursor {
    let base: UnsafeRawPointer
    let count: Int
    let file: String
    var position: Int

    init(base: UnsafeRawPointer, count: Int, file: String, position: Int = 0) {
        self.base = base
        self.count = count
        self.file = file
        self.position = position
    }

    var remaining: Int { count - position }

    func error(_ problem: String) -> FormatError { FormatError(file: file, problem) }

    /// Ensures `n` more bytes exist, naming `what` would be read otherwise.
    func require(_ n: Int, _ what: @autoclosure () -> String) throws {
        guard n >= 0, n <= remaining else {
            throw error("truncated: \(what()) needs \(n) bytes at offset \(position), but the file has \(count) bytes")
        }
    }

    @inline(__always)
    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try require(MemoryLayout<T>.size, what())
        let v = T(littleEndian: base.loadUnaligned(fromByteOffset: position, as: T.self))
        position += MemoryLayout<T>.size
        return v
    }

    mutating func u8(_ what: @autoclosure () -> String) throws -> UInt8 { try read(UInt8.self, what()) }
    mutating func u32(_ what: @autoclosure () -> String) throws -> UInt32 { try read(UInt32.self, what()) }
    mutating func u64(_ what: @autoclosure () -> String) throws -> UInt64 { try read(UInt64.self, what()) }

    /// A u64 length or count that must also fit in `Int`.
    mutating func length(_ what: @autoclosure () -> String) throws -> Int {
        let v = try u64(what())
        guard v <= UInt64(Int.max) else { throw error("\(what()) is \(v), larger than any file") }
        return Int(v)
    }

    /// A GGUF string: u64 byte length, then UTF-8 bytes (no terminator).
    mutating func string(_ what: @autoclosure () -> String) throws -> String {
        let start = position
        let n = try u64("length of \(what())")
        guard n <= UInt64(remaining) else {
            throw error("\(what()) at offset \(start) claims \(n) bytes, but only \(remaining) remain in the file")
        }
        let bytes = UnsafeRawBufferPointer(start: base + position, count: Int(n))
        guard isValidUTF8(bytes) else { throw error("\(what()) at offset \(start) is not valid UTF-8") }
        position += Int(n)
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Whether `bytes` is well-formed UTF-8 (ASCII takes a fast path).
func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var ascii = true
    for b in bytes where b >= 0x80 { ascii = false; break }
    if ascii { return true }
    var it = bytes.makeIterator()
    var parser = Unicode.UTF8.ForwardParser()
    while true {
        switch parser.parseScalar(from: &it) {
        case .valid: continue
        case .emptyInput: return true
        case .error: return false
        }
    }
}
