/// Writes a `.safetensors` file whose tensors are produced one at a time while
/// the file is written, so exporting a model never holds a second copy of it
/// in memory. Layout as `SafetensorsWriter` (and the reference implementation):
/// `__metadata__` first, tensors ordered by element size then name, header
/// padded with spaces to a multiple of 8 bytes. Writing is atomic.
struct SafetensorsStreamWriter {
    var metadata: [String: String]?
    private var pending: [(name: String, shape: [Int], dtype: DType, byteCount: Int, produce: () throws -> [UInt8])] = []

    init(metadata: [String: String]? = nil) { self.metadata = metadata }

    /// Adds a tensor whose bytes `produce` returns when its turn comes.
    mutating func addTensor(name: String, shape: [Int], dtype: DType, producer: @escaping () throws -> [UInt8]) throws {
        func fail(_ p: String) -> FormatError { FormatError(file: SafetensorsWriter.label, "tensor \"\(name)\": \(p)") }
        guard !name.isEmpty, name != "__metadata__" else { throw fail("reserved or empty name") }
        guard !pending.contains(where: { $0.name == name }) else { throw fail("added twice") }
        guard dtype.safetensorsName != nil else { throw fail("safetensors cannot hold \(dtype)") }
        var n = 1
        for d in shape {
            let (p, o) = n.multipliedReportingOverflow(by: d)
            guard d >= 0, !o else { throw fail("invalid shape \(shape)") }
            n = p
        }
        guard let bytes = dtype.byteCount(elements: n) else { throw fail("invalid shape \(shape)") }
        pending.append((name, shape, dtype, bytes, producer))
    }

    func write(to path: String) throws {
        let ordered = pending.sorted {
            $0.dtype.bytesPerBlock != $1.dtype.bytesPerBlock ? $0.dtype.bytesPerBlock > $1.dtype.bytesPerBlock
                : $0.name.utf8.lexicographicallyPrecedes($1.name.utf8)
        }
        var json = "{"
        var parts: [String] = []
        if let m = metadata {
            parts.append("\"__metadata__\":{" + m.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                .map { "\(jsonQuoted($0.key)):\(jsonQuoted($0.value))" }.joined(separator: ",") + "}")
        }
        var offset = 0
        for t in ordered {
            parts.append("\(jsonQuoted(t.name)):{\"dtype\":\"\(t.dtype.safetensorsName!)\",\"shape\":[\(t.shape.map(String.init).joined(separator: ","))],\"data_offsets\":[\(offset),\(offset + t.byteCount)]}")
            offset += t.byteCount
        }
        json += parts.joined(separator: ",") + "}"
        var header = Array(json.utf8)
        header.append(contentsOf: [UInt8](repeating: 0x20, count: (8 - header.count % 8) % 8))
        var prefix: [UInt8] = []
        appendLE(&prefix, UInt64(header.count))
        prefix.append(contentsOf: header)
        try AtomicFileWriter.write(to: path) { w in
            try w.write(prefix)
            for t in ordered {
                let bytes = try t.produce()
                guard bytes.count == t.byteCount else {
                    throw FormatError(file: path, "tensor \"\(t.name)\": produced \(bytes.count) bytes, expected \(t.byteCount)")
                }
                try w.write(bytes)
            }
        }
    }
}
