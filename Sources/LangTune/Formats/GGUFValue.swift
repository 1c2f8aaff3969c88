/// One metadata value of a GGUF file. Integer widths are kept as read, but
/// `int` reads any of them, since writers disagree on widths.
public indirect enum GGUFValue: Sendable, Equatable {
    case u8(UInt8), i8(Int8), u16(UInt16), i16(Int16), u32(UInt32), i32(Int32)
    case u64(UInt64), i64(Int64), f32(Float), f64(Double), bool(Bool)
    case string(String)
    /// Element type id (GGUF value type) and the elements.
    case array(elementType: UInt32, [GGUFValue])

    /// Any integer (or bool) value as Int; nil for other types or out-of-range u64.
    public var int: Int? {
        switch self {
        case .u8(let v): return Int(v)
        case .i8(let v): return Int(v)
        case .u16(let v): return Int(v)
        case .i16(let v): return Int(v)
        case .u32(let v): return Int(v)
        case .i32(let v): return Int(v)
        case .u64(let v): return v <= UInt64(Int.max) ? Int(v) : nil
        case .i64(let v): return Int(v)
        case .bool(let v): return v ? 1 : 0
        default: return nil
        }
    }
    /// Any numeric value as Double.
    public var double: Double? {
        switch self {
        case .f32(let v): return Double(v)
        case .f64(let v): return v
        default: return int.map(Double.init)
        }
    }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var bool: Bool? {
        if case .bool(let b) = self { return b }
        return int.map { $0 != 0 }
    }
    public var array: [GGUFValue]? { if case .array(_, let a) = self { return a } else { return nil } }
    public var stringArray: [String]? { array?.compactMap(\.string) }
    public var intArray: [Int]? { array?.compactMap(\.int) }
}
