/// Builds a GGUF (version 3) file: metadata in insertion order, then tensors
/// in insertion order, each padded to the alignment. Writing is atomic.
///
/// Tensor bytes are not copied when they come from a `WeightTensor` or a
/// producer closure, so exporting a large model streams it to disk.
public struct GGUFWriter {
    /// Tensor data alignment (a power of two); written as `general.alignment` when not 32.
    public let alignment: Int
    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensors: [Pending] = []
    private var tensorNames: Set<String> = []

    private enum Source {
        case storage(ByteStorage, offset: Int)
        case producer(() throws -> [UInt8])
    }

    private struct Pending {
        let name: String
        let ne: [Int]
        let dtype: DType
        let byteCount: Int
        let source: Source
    }

    static let label = "GGUF writer"

    public init(alignment: Int = 32) throws {
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw FormatError(file: Self.label, "alignment \(alignment) is not a power of two")
        }
        self.alignment = alignment
    }

    /// Sets metadata `key` (replacing an earlier value but keeping its position).
    public mutating func set(_ key: String, _ value: GGUFValue) {
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Metadata keys in the order they will be written.
    public var metadataKeys: [String] { keys }

    /// Adds a tensor whose bytes already exist (a tensor of another file, or
    /// one built in memory), optionally under another name.
    public mutating func addTensor(_ t: WeightTensor, name: String? = nil) throws {
        let name = name ?? t.name
        let ne = try check(name: name, shape: t.shape, dtype: t.dtype, byteCount: t.byteCount)
        guard t.offset >= 0, t.offset <= t.storage.count, t.byteCount <= t.storage.count - t.offset else {
            throw FormatError(file: Self.label, "tensor \"\(name)\": bytes lie outside its storage")
        }
        tensors.append(Pending(name: name, ne: ne, dtype: t.dtype, byteCount: t.byteCount, source: .storage(t.storage, offset: t.offset)))
        tensorNames.insert(name)
    }

    /// Adds a tensor from raw bytes of any ggml type (`shape` in HF order, outermost first).
    public mutating func addTensor(name: String, shape: [Int], dtype: DType, bytes: [UInt8]) throws {
        let storage = ByteStorage(copying: bytes)
        try addTensor(WeightTensor(name: name, shape: shape, dtype: dtype, storage: storage, offset: 0, byteCount: bytes.count))
    }

    /// Adds a float tensor stored as `dtype` (F32, F16, BF16 or Q8_0), converting
    /// the way ggml does (round to nearest even; Q8_0 as ggml's reference quantizer).
    public mutating func addTensor(name: String, shape: [Int], values: [Float], as dtype: DType) throws {
        let count = shape.reduce(into: 1 as Int?) { acc, d in
            guard let a = acc, d >= 0 else { acc = nil; return }
            let (p, o) = a.multipliedReportingOverflow(by: d)
            acc = o ? nil : p
        }
        guard count == values.count else {
            throw FormatError(file: Self.label, "tensor \"\(name)\": shape \(shape) does not hold \(values.count) values")
        }
        let bytes: [UInt8]
        switch dtype {
        case .f32:
            bytes = values.withUnsafeBytes { Array($0) }
        case .f16, .bf16:
            var out = [UInt16](repeating: 0, count: values.count)
            values.withUnsafeBufferPointer { src in
                out.withUnsafeMutableBufferPointer { dst in
                    guard let s = src.baseAddress, let d = dst.baseAddress else { return }
                    if dtype == .f16 { convertRowF32ToF16(s, d, count: values.count) }
                    else { convertRowF32ToBF16(s, d, count: values.count) }
                }
            }
            bytes = out.withUnsafeBytes { Array($0) }
        case .q8_0:
            guard (shape.last ?? 1) % 32 == 0 else {
                throw FormatError(file: Self.label, "tensor \"\(name)\": Q8_0 rows need a multiple of 32 elements, shape is \(shape)")
            }
            bytes = quantizeQ8_0(values)
        default:
            throw FormatError(file: Self.label, "tensor \"\(name)\": converting floats to \(dtype) is not supported (F32, F16, BF16, Q8_0 are)")
        }
        try addTensor(name: name, shape: shape, dtype: dtype, bytes: bytes)
    }

    /// Adds a tensor whose bytes are produced only while the file is written
    /// (one tensor in memory at a time). The producer must return exactly
    /// `dtype.byteCount(elements:)` bytes for `shape`.
    public mutating func addTensor(name: String, shape: [Int], dtype: DType, producer: @escaping () throws -> [UInt8]) throws {
        var count = 1
        for d in shape {
            let (p, o) = count.multipliedReportingOverflow(by: d)
            guard d > 0, !o else { throw FormatError(file: Self.label, "tensor \"\(name)\": invalid shape \(shape)") }
            count = p
        }
        guard let bytes = dtype.byteCount(elements: count) else {
            throw FormatError(file: Self.label, "tensor \"\(name)\": \(count) elements are not whole \(dtype) blocks")
        }
        let ne = try check(name: name, shape: shape, dtype: dtype, byteCount: bytes)
        tensors.append(Pending(name: name, ne: ne, dtype: dtype, byteCount: bytes, source: .producer(producer)))
        tensorNames.insert(name)
    }

    /// Validates a tensor and returns its GGUF dimensions (innermost first).
    private func check(name: String, shape: [Int], dtype: DType, byteCount: Int) throws -> [Int] {
        func fail(_ p: String) -> FormatError { FormatError(file: Self.label, "tensor \"\(name)\": \(p)") }
        guard !name.isEmpty else { throw fail("empty name") }
        guard !tensorNames.contains(name) else { throw fail("added twice") }
        guard dtype.rawValue < 1000 else { throw fail("\(dtype) is not a ggml type") }
        guard shape.count <= 4 else { throw fail("\(shape.count) dimensions; GGUF allows at most 4") }
        var n = 1
        for d in shape {
            guard d > 0 else { throw fail("dimension \(d) in \(shape) is not positive") }
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard !o else { throw fail("shape \(shape) overflows") }
            n = p
        }
        guard (shape.last ?? 1) % dtype.blockSize == 0 else {
            throw fail("rows of \(shape.last ?? 1) are not whole \(dtype) blocks of \(dtype.blockSize)")
        }
        guard dtype.byteCount(elements: n) == byteCount else {
            throw fail("\(byteCount) bytes do not hold \(shape) \(dtype)")
        }
        return shape.reversed()
    }

    /// The complete file as bytes (for tests and small files).
    public func serialized() throws -> [UInt8] {
        var out = [UInt8]()
        try emit { out.append(contentsOf: $0) }
        return out
    }

    /// Writes the file to `path` atomically (temporary file, then rename).
    public func write(to path: String) throws {
        do {
            try AtomicFileWriter.write(to: path) { w in
                try emit { try w.write($0) }
            }
        } catch let e as FormatError where e.file == Self.label {
            throw FormatError(file: path, e.problem)
        }
    }

    private func emit(_ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var keys = self.keys
        var values = self.values
        if let a = values["general.alignment"] {
            guard a.int == alignment else {
                throw FormatError(file: Self.label, "general.alignment \(a) disagrees with the writer's alignment \(alignment)")
            }
        } else if alignment != 32 {
            keys.append("general.alignment")
            values["general.alignment"] = .u32(UInt32(alignment))
        }
        var header = [UInt8]()
        header.append(contentsOf: Array("GGUF".utf8))
        appendLE(&header, UInt32(3))
        appendLE(&header, UInt64(tensors.count))
        appendLE(&header, UInt64(keys.count))
        for k in keys {
            appendString(&header, k)
            let v = values[k]!
            appendLE(&header, try typeID(v, key: k))
            try appendValue(&header, v, key: k)
        }
        var offset = 0
        for t in tensors {
            appendString(&header, t.name)
            appendLE(&header, UInt32(t.ne.count))
            for d in t.ne { appendLE(&header, UInt64(d)) }
            appendLE(&header, UInt32(t.dtype.rawValue))
            appendLE(&header, UInt64(offset))
            offset += padded(t.byteCount)
        }
        header.append(contentsOf: [UInt8](repeating: 0, count: padded(header.count) - header.count))
        try header.withUnsafeBytes(sink)
        for t in tensors {
            switch t.source {
            case .storage(let s, let o):
                try sink(UnsafeRawBufferPointer(start: s.base + o, count: t.byteCount))
            case .producer(let make):
                let bytes = try make()
                guard bytes.count == t.byteCount else {
                    throw FormatError(file: Self.label, "tensor \"\(t.name)\": producer returned \(bytes.count) bytes, expected \(t.byteCount)")
                }
                try bytes.withUnsafeBytes(sink)
            }
            try [UInt8](repeating: 0, count: padded(t.byteCount) - t.byteCount).withUnsafeBytes(sink)
        }
    }

    private func padded(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    private func typeID(_ v: GGUFValue, key: String) throws -> UInt32 {
        switch v {
        case .u8: return 0
        case .i8: return 1
        case .u16: return 2
        case .i16: return 3
        case .u32: return 4
        case .i32: return 5
        case .f32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .u64: return 10
        case .i64: return 11
        case .f64: return 12
        }
    }

    private func appendValue(_ out: inout [UInt8], _ v: GGUFValue, key: String) throws {
        switch v {
        case .u8(let x): out.append(x)
        case .i8(let x): out.append(UInt8(bitPattern: x))
        case .u16(let x): appendLE(&out, x)
        case .i16(let x): appendLE(&out, x)
        case .u32(let x): appendLE(&out, x)
        case .i32(let x): appendLE(&out, x)
        case .u64(let x): appendLE(&out, x)
        case .i64(let x): appendLE(&out, x)
        case .f32(let x): appendLE(&out, x.bitPattern)
        case .f64(let x): appendLE(&out, x.bitPattern)
        case .bool(let x): out.append(x ? 1 : 0)
        case .string(let s): appendString(&out, s)
        case .array(let elementType, let items):
            guard GGUFValueType(rawValue: elementType) != nil else {
                throw FormatError(file: Self.label, "metadata \"\(key)\": unknown array element type \(elementType)")
            }
            appendLE(&out, elementType)
            appendLE(&out, UInt64(items.count))
            for item in items {
                guard try typeID(item, key: key) == elementType else {
                    throw FormatError(file: Self.label, "metadata \"\(key)\": array of type \(elementType) holds \(item)")
                }
                // A nested array's own element type and count follow directly.
                try appendValue(&out, item, key: key)
            }
        }
    }
}

@inline(__always)
func appendLE<T: FixedWidthInteger>(_ out: inout [UInt8], _ v: T) {
    withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
}

func appendString(_ out: inout [UInt8], _ s: String) {
    appendLE(&out, UInt64(s.utf8.count))
    out.append(contentsOf: s.utf8)
}
