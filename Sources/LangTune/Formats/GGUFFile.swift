/// Where one tensor lies in a GGUF file, as its tensor-info record says.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Dimensions innermost first, as GGUF stores them (`ne[0]` = row length).
    public let ne: [Int]
    public let dtype: DType
    /// Byte offset from the start of the data section.
    public let offset: Int
    public let byteCount: Int

    /// Dimensions outermost first (Hugging Face order): `ne` reversed.
    public var shape: [Int] { ne.reversed() }
    public var elementCount: Int { ne.reduce(1, *) }
}

/// GGUF value type ids (the `u32 type` in front of each metadata value).
enum GGUFValueType: UInt32, CaseIterable {
    case u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, bool = 7
    case string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12

    /// The fewest bytes a value of this type can take, used to reject counts
    /// that the rest of the file could not possibly hold.
    var minimumSize: Int {
        switch self {
        case .u8, .i8, .bool: return 1
        case .u16, .i16: return 2
        case .u32, .i32, .f32: return 4
        case .u64, .i64, .f64, .string: return 8
        case .array: return 12
        }
    }
}

/// A parsed GGUF file (versions 2 and 3), backed by a read-only mapping.
///
/// Parsing validates every length, count, shape and offset against the file
/// size, so a damaged or hostile file fails with a `FormatError` naming the
/// file and the problem; tensor bytes are not copied.
public struct GGUFFile: Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Tensor infos in file order.
    public let tensorInfos: [GGUFTensorInfo]
    /// `general.alignment`, or 32 when absent.
    public let alignment: Int
    /// Absolute byte offset of the data section.
    public let dataOffset: Int
    /// The whole file's bytes.
    public let storage: ByteStorage
    private let index: [String: Int]

    /// Deepest nesting of arrays accepted (arrays of arrays of …), so that a
    /// hostile file cannot exhaust the stack.
    static let maxArrayDepth = 16
    static let defaultAlignment = 32

    /// Maps and parses the GGUF file at `path`.
    public init(path: String) throws {
        try self.init(storage: MappedFile.map(path), path: path)
    }

    /// Parses GGUF bytes already in memory; `path` names them in errors.
    public init(storage: ByteStorage, path: String) throws {
        self.storage = storage
        self.path = path
        var c = ByteCursor(base: storage.base, count: storage.count, file: path)
        guard storage.count >= 4 else { throw c.error("not a GGUF file: only \(storage.count) bytes") }
        let magic = (0..<4).map { storage.base.load(fromByteOffset: $0, as: UInt8.self) }
        guard magic == Array("GGUF".utf8) else {
            let hex = magic.map { String($0, radix: 16) }.joined(separator: " ")
            throw c.error("not a GGUF file: magic bytes are \(hex), expected 47 47 55 46 (\"GGUF\")")
        }
        c.position = 4
        let version = try c.u32("the version")
        switch version {
        case 2, 3: break
        case 1:
            throw c.error("GGUF version 1 is not supported (it predates v2's 64-bit counts); re-convert the model with a current llama.cpp")
        default:
            if version.byteSwapped == 2 || version.byteSwapped == 3 {
                throw c.error("big-endian GGUF files are not supported")
            }
            throw c.error("unsupported GGUF version \(version) (supported: 2 and 3)")
        }
        self.version = version
        let tensorCount = try c.u64("the tensor count")
        let kvCount = try c.u64("the metadata count")
        // Each metadata entry takes at least a key length, a type and one byte.
        guard kvCount <= UInt64(c.remaining / 13) else {
            throw c.error("metadata count \(kvCount) is impossible: the \(c.remaining) bytes left could hold at most \(c.remaining / 13)")
        }

        var metadata: [String: GGUFValue] = [:]
        var keys: [String] = []
        keys.reserveCapacity(Int(kvCount))
        for i in 0..<Int(kvCount) {
            let key = try c.string("metadata key #\(i)")
            let rawType = try c.u32("the type of metadata \"\(key)\"")
            guard let type = GGUFValueType(rawValue: rawType) else {
                throw c.error("metadata \"\(key)\" has unknown value type \(rawType)")
            }
            let value = try Self.readValue(&c, type: type, key: key, depth: 0)
            guard metadata.updateValue(value, forKey: key) == nil else {
                throw c.error("metadata key \"\(key)\" appears twice")
            }
            keys.append(key)
        }
        self.metadata = metadata
        self.metadataKeys = keys

        var alignment = Self.defaultAlignment
        if let a = metadata["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0, v <= 1 << 30 else {
                throw c.error("general.alignment must be a power of two, got \(a)")
            }
            alignment = v
        }
        self.alignment = alignment

        // Each tensor info takes at least a name length, n_dims, a type and an offset.
        guard tensorCount <= UInt64(c.remaining / 24) else {
            throw c.error("tensor count \(tensorCount) is impossible: the \(c.remaining) bytes left could hold at most \(c.remaining / 24) tensor infos")
        }
        var infos: [GGUFTensorInfo] = []
        infos.reserveCapacity(Int(tensorCount))
        var index: [String: Int] = [:]
        for i in 0..<Int(tensorCount) {
            let info = try Self.readTensorInfo(&c, number: i)
            guard index.updateValue(i, forKey: info.name) == nil else {
                throw c.error("tensor \"\(info.name)\" appears twice")
            }
            infos.append(info)
        }
        let (dataStart, over) = c.position.addingReportingOverflow((alignment - c.position % alignment) % alignment)
        guard !over else { throw c.error("data section offset overflows") }
        self.dataOffset = dataStart
        for info in infos {
            guard info.offset % alignment == 0 else {
                throw c.error("tensor \"\(info.name)\" has offset \(info.offset), not a multiple of the alignment \(alignment)")
            }
            let available = storage.count - dataStart  // may be negative when the file ends before the data section
            guard available >= 0, info.offset <= available, info.byteCount <= available - info.offset else {
                throw c.error("tensor \"\(info.name)\" (\(info.byteCount) bytes at data offset \(info.offset)) runs past the end of the file (\(storage.count) bytes, data section at \(dataStart))")
            }
        }
        self.tensorInfos = infos
        self.index = index
    }

    private static func readValue(_ c: inout ByteCursor, type: GGUFValueType, key: String, depth: Int) throws -> GGUFValue {
        let what = "metadata \"\(key)\""
        switch type {
        case .u8: return .u8(try c.read(UInt8.self, what))
        case .i8: return .i8(try c.read(Int8.self, what))
        case .u16: return .u16(try c.read(UInt16.self, what))
        case .i16: return .i16(try c.read(Int16.self, what))
        case .u32: return .u32(try c.read(UInt32.self, what))
        case .i32: return .i32(try c.read(Int32.self, what))
        case .u64: return .u64(try c.read(UInt64.self, what))
        case .i64: return .i64(try c.read(Int64.self, what))
        case .f32: return .f32(Float(bitPattern: try c.read(UInt32.self, what)))
        case .f64: return .f64(Double(bitPattern: try c.read(UInt64.self, what)))
        case .bool: return .bool(try c.read(UInt8.self, what) != 0)
        case .string: return .string(try c.string(what))
        case .array:
            guard depth < maxArrayDepth else {
                throw c.error("\(what) nests arrays more than \(maxArrayDepth) deep")
            }
            let rawElem = try c.u32("the element type of \(what)")
            guard let elem = GGUFValueType(rawValue: rawElem) else {
                throw c.error("\(what) is an array of unknown value type \(rawElem)")
            }
            let countOffset = c.position
            let n = try c.u64("the length of \(what)")
            guard n <= UInt64(c.remaining / elem.minimumSize) else {
                throw c.error("\(what) at offset \(countOffset) claims \(n) elements, more than the \(c.remaining) bytes left could hold")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(n))
            for _ in 0..<Int(n) {
                values.append(try readValue(&c, type: elem, key: key, depth: depth + 1))
            }
            return .array(elementType: rawElem, values)
        }
    }

    private static func readTensorInfo(_ c: inout ByteCursor, number i: Int) throws -> GGUFTensorInfo {
        let name = try c.string("the name of tensor #\(i)")
        let nDims = try c.u32("the dimension count of tensor \"\(name)\"")
        guard nDims <= 4 else { throw c.error("tensor \"\(name)\" has \(nDims) dimensions; GGUF allows at most 4") }
        var ne: [Int] = []
        var elements = 1
        for d in 0..<Int(nDims) {
            let raw = Int64(bitPattern: try c.u64("dimension \(d) of tensor \"\(name)\""))
            guard raw > 0 else { throw c.error("tensor \"\(name)\" has dimension \(d) = \(raw); dimensions must be positive") }
            let (p, over) = elements.multipliedReportingOverflow(by: Int(raw))
            guard !over else { throw c.error("tensor \"\(name)\" has too many elements (\(ne + [Int(raw)]) overflows)") }
            elements = p
            ne.append(Int(raw))
        }
        let rawType = try c.u32("the type of tensor \"\(name)\"")
        guard rawType < 1000, let dtype = DType(rawValue: Int(rawType)) else {
            throw c.error("tensor \"\(name)\" has unsupported ggml type \(rawType)\(ggmlTypeName(rawType).map { " (\($0))" } ?? "")")
        }
        let rowLength = ne.first ?? 1
        guard rowLength % dtype.blockSize == 0 else {
            throw c.error("tensor \"\(name)\" has rows of \(rowLength) elements, not a multiple of the \(dtype) block size \(dtype.blockSize)")
        }
        guard let bytes = dtype.byteCount(elements: elements) else {
            throw c.error("tensor \"\(name)\" is too large (\(elements) elements of \(dtype))")
        }
        let offset = try c.u64("the offset of tensor \"\(name)\"")
        guard offset <= UInt64(Int.max) else { throw c.error("tensor \"\(name)\" has offset \(offset), beyond any file") }
        return GGUFTensorInfo(name: name, ne: ne, dtype: dtype, offset: Int(offset), byteCount: bytes)
    }

    /// The info record of tensor `name`, or nil.
    public func tensorInfo(_ name: String) -> GGUFTensorInfo? {
        index[name].map { tensorInfos[$0] }
    }

    /// Names of all tensors in file order.
    public var tensorNames: [String] { tensorInfos.map(\.name) }

    /// Tensor `name` as a view into the mapped file (shape in HF order: `ne` reversed).
    public func tensor(_ name: String) throws -> WeightTensor {
        guard let info = tensorInfo(name) else { throw FormatError(file: path, "no tensor named \"\(name)\"") }
        return tensor(info)
    }

    /// The tensor an info record of this file describes.
    public func tensor(_ info: GGUFTensorInfo) -> WeightTensor {
        WeightTensor(name: info.name, shape: info.shape, dtype: info.dtype, storage: storage,
                     offset: dataOffset + info.offset, byteCount: info.byteCount)
    }
}

/// Names of ggml types LangTune does not read, for error messages.
func ggmlTypeName(_ t: UInt32) -> String? {
    switch t {
    case 4: return "Q4_2, removed from ggml"
    case 5: return "Q4_3, removed from ggml"
    case 16: return "IQ2_XXS"
    case 17: return "IQ2_XS"
    case 18: return "IQ3_XXS"
    case 19: return "IQ1_S"
    case 20: return "IQ4_NL"
    case 21: return "IQ3_S"
    case 22: return "IQ2_S"
    case 23: return "IQ4_XS"
    case 29: return "IQ1_M"
    case 31, 32, 33: return "Q4_0 repacked for a CPU backend"
    case 34: return "TQ1_0"
    case 35: return "TQ2_0"
    case 39: return "MXFP4"
    default: return nil
    }
}
