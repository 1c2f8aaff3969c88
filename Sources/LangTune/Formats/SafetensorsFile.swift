import Foundation

extension DType {
    /// This type's name in a safetensors header, or nil for types safetensors cannot hold.
    public var safetensorsName: String? {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .bf16: return "BF16"
        case .f64: return "F64"
        case .i8: return "I8"
        case .u8: return "U8"
        case .i16: return "I16"
        case .i32: return "I32"
        case .i64: return "I64"
        case .bool: return "BOOL"
        default: return nil
        }
    }

    /// The type a safetensors dtype name stands for, or nil when LangTune does not read it.
    public init?(safetensorsName name: String) {
        guard let t = DType.allCases.first(where: { $0.safetensorsName == name }) else { return nil }
        self = t
    }
}

/// One `.safetensors` file, backed by a read-only mapping.
///
/// Layout: u64 header length N, N bytes of JSON (`{name: {dtype, shape,
/// data_offsets}}` plus an optional `__metadata__` string map), then the data.
/// Validation follows the reference implementation: tensors must exactly tile
/// the data section (no overlap, no gap, nothing after the last one).
public struct SafetensorsFile: Sendable {
    public let path: String
    /// `__metadata__`, when present.
    public let metadata: [String: String]?
    /// Tensors in data order.
    public let tensors: [WeightTensor]
    /// Absolute offset of the data section (8 + header length).
    public let dataOffset: Int
    public let storage: ByteStorage
    private let index: [String: Int]

    /// The reference implementation refuses headers above 100 MB.
    static let maxHeaderLength = 100_000_000

    public init(path: String) throws {
        try self.init(storage: MappedFile.map(path), path: path)
    }

    /// Parses safetensors bytes already in memory; `path` names them in errors.
    public init(storage: ByteStorage, path: String) throws {
        func fail(_ p: String) -> FormatError { FormatError(file: path, p) }
        self.storage = storage
        self.path = path
        guard storage.count >= 8 else { throw fail("not a safetensors file: only \(storage.count) bytes") }
        let n = UInt64(littleEndian: storage.base.loadUnaligned(as: UInt64.self))
        guard n <= UInt64(storage.count - 8) else {
            throw fail("header length \(n) runs past the end of the file (\(storage.count) bytes)")
        }
        guard n <= UInt64(Self.maxHeaderLength) else { throw fail("header length \(n) exceeds the 100 MB limit") }
        guard n >= 2 else { throw fail("header of \(n) bytes cannot hold a JSON object") }
        let headerBytes = Data(bytes: storage.base + 8, count: Int(n))
        guard headerBytes.first == UInt8(ascii: "{") else { throw fail("header is not a JSON object") }
        let header: SafetensorsHeader
        do {
            header = try JSONDecoder().decode(SafetensorsHeader.self, from: headerBytes)
        } catch let e as FormatError {
            throw fail(e.problem)
        } catch {
            throw fail("header is not valid safetensors JSON: \(describeDecodingError(error))")
        }
        self.metadata = header.metadata
        dataOffset = 8 + Int(n)
        let dataSize = storage.count - dataOffset

        var sorted: [(name: String, entry: SafetensorsHeader.Entry, dtype: DType, bytes: Int)] = []
        for (name, e) in header.entries {
            guard let dtype = DType(safetensorsName: e.dtype) else {
                throw fail("tensor \"\(name)\" has unsupported dtype \"\(e.dtype)\"")
            }
            var count = 1
            for d in e.shape {
                let (p, o) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !o else { throw fail("tensor \"\(name)\" has invalid shape \(e.shape)") }
                count = p
            }
            guard let bytes = dtype.byteCount(elements: count) else {
                throw fail("tensor \"\(name)\" with shape \(e.shape) is too large")
            }
            guard e.offsets.count == 2 else {
                throw fail("tensor \"\(name)\" has data_offsets \(e.offsets); expected [begin, end]")
            }
            let (begin, end) = (e.offsets[0], e.offsets[1])
            guard begin >= 0, end >= begin else { throw fail("tensor \"\(name)\" has invalid data_offsets [\(begin), \(end)]") }
            guard end - begin == bytes else {
                throw fail("tensor \"\(name)\" spans \(end - begin) bytes, but shape \(e.shape) of \(e.dtype) needs \(bytes)")
            }
            guard end <= dataSize else {
                throw fail("tensor \"\(name)\" (data bytes \(begin)..<\(end)) runs past the end of the file (data section has \(dataSize) bytes)")
            }
            sorted.append((name, e, dtype, bytes))
        }
        sorted.sort { ($0.entry.offsets[0], $0.entry.offsets[1], $0.name) < ($1.entry.offsets[0], $1.entry.offsets[1], $1.name) }
        var expected = 0
        var previous: String?
        for t in sorted {
            let begin = t.entry.offsets[0]
            if begin < expected {
                throw fail("tensor \"\(t.name)\" (data bytes \(begin)..<\(t.entry.offsets[1])) overlaps tensor \"\(previous ?? "")\"")
            }
            if begin > expected {
                throw fail("gap in the data section: bytes \(expected)..<\(begin) before tensor \"\(t.name)\" belong to no tensor")
            }
            expected = t.entry.offsets[1]
            previous = t.name
        }
        guard expected == dataSize else {
            throw fail("data section has \(dataSize) bytes but the tensors cover only \(expected)")
        }
        var tensors: [WeightTensor] = []
        var index: [String: Int] = [:]
        for t in sorted {
            index[t.name] = tensors.count
            tensors.append(WeightTensor(name: t.name, shape: t.entry.shape, dtype: t.dtype, storage: storage,
                                        offset: dataOffset + t.entry.offsets[0], byteCount: t.bytes))
        }
        self.tensors = tensors
        self.index = index
    }

    public var tensorNames: [String] { tensors.map(\.name) }

    /// Tensor `name`, or a `FormatError` naming this file.
    public func tensor(_ name: String) throws -> WeightTensor {
        guard let i = index[name] else { throw FormatError(file: path, "no tensor named \"\(name)\"") }
        return tensors[i]
    }

    public func contains(_ name: String) -> Bool { index[name] != nil }
}

/// The JSON header: tensor entries keyed by name, and `__metadata__`.
struct SafetensorsHeader: Decodable {
    struct Entry: Decodable {
        let dtype: String
        let shape: [Int]
        let offsets: [Int]
        enum CodingKeys: String, CodingKey { case dtype, shape, offsets = "data_offsets" }
    }

    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    var entries: [(String, Entry)] = []
    var metadata: [String: String]?

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        for key in c.allKeys {
            if key.stringValue == "__metadata__" {
                metadata = try c.decode([String: String].self, forKey: key)
            } else {
                entries.append((key.stringValue, try c.decode(Entry.self, forKey: key)))
            }
        }
    }
}

/// A one-line account of a JSON decoding failure (which key, what was wrong).
func describeDecodingError(_ error: Error) -> String {
    guard let e = error as? DecodingError else { return "\(error)" }
    func path(_ c: DecodingError.Context) -> String {
        let p = c.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return p.isEmpty ? "" : " at \(p)"
    }
    switch e {
    case .dataCorrupted(let c): return "malformed JSON\(path(c))" + (c.underlyingError.map { " (\($0.localizedDescription))" } ?? "")
    case .keyNotFound(let k, let c): return "missing key \"\(k.stringValue)\"\(path(c))"
    case .typeMismatch(let t, let c): return "expected \(t)\(path(c))"
    case .valueNotFound(let t, let c): return "missing \(t) value\(path(c))"
    @unknown default: return "\(e)"
    }
}
