/// Builds a `.safetensors` file the way the reference implementation does:
/// compact JSON header (`__metadata__` first), padded with spaces to a
/// multiple of 8 bytes, tensors ordered by element size (largest first) then
/// name, packed back to back. Writing is atomic.
public struct SafetensorsWriter {
    /// Written as `__metadata__` when not nil.
    public var metadata: [String: String]?
    private var tensors: [WeightTensor] = []
    private var names: Set<String> = []

    static let label = "safetensors writer"

    public init(metadata: [String: String]? = nil) {
        self.metadata = metadata
    }

    /// Adds a tensor (F32, F16, BF16, F64, I8, U8, I16, I32, I64, BOOL), optionally renamed.
    public mutating func addTensor(_ t: WeightTensor, name: String? = nil) throws {
        let name = name ?? t.name
        func fail(_ p: String) -> FormatError { FormatError(file: Self.label, "tensor \"\(name)\": \(p)") }
        guard name != "__metadata__", !name.isEmpty else { throw fail("reserved or empty name") }
        guard !names.contains(name) else { throw fail("added twice") }
        guard t.dtype.safetensorsName != nil else { throw fail("safetensors cannot hold \(t.dtype)") }
        var n = 1
        for d in t.shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard d >= 0, !o else { throw fail("invalid shape \(t.shape)") }
            n = p
        }
        guard t.dtype.byteCount(elements: n) == t.byteCount else { throw fail("\(t.byteCount) bytes do not hold \(t.shape) \(t.dtype)") }
        guard t.offset >= 0, t.offset <= t.storage.count, t.byteCount <= t.storage.count - t.offset else {
            throw fail("bytes lie outside its storage")
        }
        tensors.append(WeightTensor(name: name, shape: t.shape, dtype: t.dtype, storage: t.storage, offset: t.offset, byteCount: t.byteCount))
        names.insert(name)
    }

    /// Adds a tensor from raw little-endian bytes.
    public mutating func addTensor(name: String, shape: [Int], dtype: DType, bytes: [UInt8]) throws {
        try addTensor(WeightTensor(name: name, shape: shape, dtype: dtype, storage: ByteStorage(copying: bytes),
                                   offset: 0, byteCount: bytes.count))
    }

    /// Adds float values stored as F32, F16 or BF16 (round to nearest even).
    public mutating func addTensor(name: String, shape: [Int], values: [Float], as dtype: DType = .f32) throws {
        let bytes: [UInt8]
        switch dtype {
        case .f32: bytes = values.withUnsafeBytes { Array($0) }
        case .f16, .bf16:
            let half = values.map { dtype == .f16 ? Float16Bits.fromFloat($0) : BFloat16Bits.fromFloat($0) }
            bytes = half.withUnsafeBytes { Array($0) }
        default:
            throw FormatError(file: Self.label, "tensor \"\(name)\": floats can be stored as F32, F16 or BF16, not \(dtype)")
        }
        try addTensor(name: name, shape: shape, dtype: dtype, bytes: bytes)
    }

    /// Tensors in the order they will be stored.
    private var ordered: [WeightTensor] {
        tensors.sorted {
            let (a, b) = ($0.dtype.bytesPerBlock, $1.dtype.bytesPerBlock)
            return a != b ? a > b : ($0.name.utf8.lexicographicallyPrecedes($1.name.utf8))
        }
    }

    /// The header JSON, padded with spaces to a multiple of 8 bytes.
    private func header(_ ordered: [WeightTensor]) -> [UInt8] {
        var json = "{"
        var first = true
        if let m = metadata {
            json += "\"__metadata__\":{"
            json += m.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonQuoted($0.key)):\(jsonQuoted($0.value))" }.joined(separator: ",")
            json += "}"
            first = false
        }
        var offset = 0
        for t in ordered {
            if !first { json += "," }
            first = false
            let shape = t.shape.map(String.init).joined(separator: ",")
            json += "\(jsonQuoted(t.name)):{\"dtype\":\"\(t.dtype.safetensorsName!)\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}"
            offset += t.byteCount
        }
        json += "}"
        var bytes = Array(json.utf8)
        bytes.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - bytes.count % 8) % 8))
        return bytes
    }

    private func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        let ordered = self.ordered
        let h = header(ordered)
        var prefix = [UInt8]()
        appendLE(&prefix, UInt64(h.count))
        prefix.append(contentsOf: h)
        try prefix.withUnsafeBytes(sink)
        for t in ordered { try sink(t.bytes) }
    }

    /// The complete file as bytes.
    public func serialized() throws -> [UInt8] {
        var out = [UInt8]()
        try emit { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the file to `path` atomically (temporary file, then rename).
    public func write(to path: String) throws {
        do {
            try AtomicFileWriter.write(to: path) { w in try emit { try w.write($0) } }
        } catch let e as FormatError where e.file == Self.label {
            throw FormatError(file: path, e.problem)
        }
    }
}

/// `s` as a JSON string literal.
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20:
            let hex = String(u.value, radix: 16)
            out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}
