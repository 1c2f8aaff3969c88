import Foundation
@testable import LangTune

/// A minimal GGUF metadata reader for the tokenizer tests only (header and key/values;
/// tensor infos are not read). The library's own reader lives in Formats.
enum TokenizerTestGGUF {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func readMetadata(_ url: URL) throws -> [String: GGUFValue] {
        let data = try Data(contentsOf: url, options: .alwaysMapped)
        var reader = Reader(data: data)
        guard try reader.bytes(4) == Array("GGUF".utf8) else { throw Failure(description: "not a GGUF file") }
        let version = try reader.u32()
        guard version == 2 || version == 3 else { throw Failure(description: "GGUF version \(version)") }
        _ = try reader.u64()  // tensor count
        let kvCount = try reader.u64()
        var out: [String: GGUFValue] = [:]
        for _ in 0..<kvCount {
            let key = try reader.string()
            let type = try reader.u32()
            out[key] = try reader.value(type)
        }
        return out
    }

    private struct Reader {
        let data: Data
        var pos = 0

        mutating func bytes(_ n: Int) throws -> [UInt8] {
            guard n >= 0, pos + n <= data.count else { throw Failure(description: "truncated at \(pos)") }
            let start = data.startIndex + pos
            pos += n
            return [UInt8](data[start..<(start + n)])
        }
        mutating func le<T: FixedWidthInteger>(_: T.Type) throws -> T {
            let b = try bytes(MemoryLayout<T>.size)
            var v: T = 0
            for (i, x) in b.enumerated() { v |= T(truncatingIfNeeded: x) << (8 * i) }
            return v
        }
        mutating func u32() throws -> UInt32 { try le(UInt32.self) }
        mutating func u64() throws -> UInt64 { try le(UInt64.self) }
        mutating func string() throws -> String {
            let n = try u64()
            guard n < 1 << 30 else { throw Failure(description: "string too long") }
            return String(decoding: try bytes(Int(n)), as: UTF8.self)
        }
        mutating func value(_ type: UInt32) throws -> GGUFValue {
            switch type {
            case 0: return .u8(try le(UInt8.self))
            case 1: return .i8(try le(Int8.self))
            case 2: return .u16(try le(UInt16.self))
            case 3: return .i16(try le(Int16.self))
            case 4: return .u32(try le(UInt32.self))
            case 5: return .i32(try le(Int32.self))
            case 6: return .f32(Float(bitPattern: try le(UInt32.self)))
            case 7: return .bool(try le(UInt8.self) != 0)
            case 8: return .string(try string())
            case 9:
                let elementType = try u32()
                let n = try u64()
                guard n < 1 << 28 else { throw Failure(description: "array too long") }
                var items: [GGUFValue] = []
                items.reserveCapacity(Int(n))
                for _ in 0..<n { items.append(try value(elementType)) }
                return .array(elementType: elementType, items)
            case 10: return .u64(try le(UInt64.self))
            case 11: return .i64(try le(Int64.self))
            case 12: return .f64(Double(bitPattern: try le(UInt64.self)))
            default: throw Failure(description: "unknown value type \(type)")
            }
        }
    }
}
