import CLangTuneKernels
import Foundation

/// Reads bitsandbytes' state dict of a 4-bit layer (what `transformers` saves for a model loaded
/// with `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")`, and what
/// `langtune quantize` writes) back into `NF4Tensor`s: for a weight `W`, `W` holds the packed codes
/// (uint8), `W.absmax` the block scales (float32, or uint8 codes with double quantization),
/// `W.nested_absmax` and `W.nested_quant_map` the second level, `W.quant_map` the 16 levels and
/// `W.quant_state.bitsandbytes__nf4` a JSON object with `quant_type`, `blocksize`, `shape`,
/// `nested_blocksize` and `nested_offset`.
public enum BitsAndBytesNF4 {
    static let stateSuffix = ".quant_state.bitsandbytes__nf4"
    static let partSuffixes = [".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", stateSuffix]

    /// Splits `tensors` into the NF4 weights they hold and everything else.
    /// - Parameter file: the file a tensor came from, for error messages.
    public static func extract(_ tensors: [String: WeightTensor], file: (String) -> String) throws
        -> (nf4: [String: NF4Tensor], rest: [String: WeightTensor]) {
        var rest = tensors
        var nf4: [String: NF4Tensor] = [:]
        for stateName in tensors.keys.sorted() where stateName.hasSuffix(stateSuffix) {
            let name = String(stateName.dropLast(stateSuffix.count))
            nf4[name] = try read(name, tensors, file: file(name))
            rest[name] = nil
            for s in partSuffixes { rest[name + s] = nil }
        }
        return (nf4, rest)
    }

    /// The NF4 weight `name` from its state-dict parts.
    static func read(_ name: String, _ tensors: [String: WeightTensor], file: String) throws -> NF4Tensor {
        func fail(_ problem: String) -> FormatError { FormatError(file: file, "4-bit weight \"\(name)\": \(problem)") }
        func part(_ suffix: String) throws -> WeightTensor {
            guard let t = tensors[name + suffix] else { throw fail("missing \"\(name + suffix)\"") }
            return t
        }
        func floats(_ t: WeightTensor, count: Int) throws -> [Float] {
            guard t.dtype == .f32, t.elementCount == count else {
                throw fail("\"\(t.name)\" is \(t.dtype) with \(t.elementCount) values, expected \(count) F32 values")
            }
            return try dequantize(t)
        }
        func bytes(_ t: WeightTensor, count: Int) throws -> [UInt8] {
            guard t.dtype == .u8, t.elementCount == count, t.byteCount == count else {
                throw fail("\"\(t.name)\" is \(t.dtype) with \(t.elementCount) values, expected \(count) U8 values")
            }
            return Array(t.bytes)
        }

        let stateTensor = try part(stateSuffix)
        guard stateTensor.dtype == .u8,
              let object = try? JSONSerialization.jsonObject(with: Data(stateTensor.bytes)), let state = object as? [String: Any] else {
            throw fail("the quant_state tensor is not a JSON object")
        }
        guard (state["quant_type"] as? String) == "nf4" else {
            throw fail("quant_type is \(state["quant_type"].map { "\($0)" } ?? "missing"); LangTune reads nf4 (not fp4)")
        }
        guard let shape = (state["shape"] as? [NSNumber])?.map(\.intValue), !shape.isEmpty, shape.allSatisfy({ $0 > 0 }),
              let blocksize = (state["blocksize"] as? NSNumber)?.intValue, blocksize > 0, blocksize % 2 == 0 else {
            throw fail("quant_state needs a positive shape and an even positive blocksize")
        }
        let count = shape.reduce(1, *)
        let blocks = (count + blocksize - 1) / blocksize
        let packedTensor = try part("")
        let packed = try bytes(packedTensor, count: (count + 1) / 2)
        guard try floats(try part(".quant_map"), count: 16) == BitsAndBytes.nf4Code else {
            throw fail("quant_map is not bitsandbytes' NF4 code book")
        }
        let absmaxTensor = try part(".absmax")
        if tensors[name + ".nested_absmax"] != nil {
            guard let nestedBlocksize = (state["nested_blocksize"] as? NSNumber)?.intValue, nestedBlocksize > 0,
                  let offset = (state["nested_offset"] as? NSNumber)?.floatValue else {
                throw fail("double quantization needs nested_blocksize and nested_offset in quant_state")
            }
            let codes = try bytes(absmaxTensor, count: blocks)
            let nested = try floats(try part(".nested_absmax"), count: (blocks + nestedBlocksize - 1) / nestedBlocksize)
            guard try floats(try part(".nested_quant_map"), count: 256) == BitsAndBytes.dynamicMap else {
                throw fail("nested_quant_map is not bitsandbytes' dynamic map")
            }
            return NF4Tensor(shape: shape, blocksize: blocksize, packed: packed,
                             scales: .double(codes: codes, nestedAbsmax: nested, offset: offset, nestedBlocksize: nestedBlocksize))
        }
        return NF4Tensor(shape: shape, blocksize: blocksize, packed: packed, scales: .plain(try floats(absmaxTensor, count: blocks)))
    }
}

extension NF4Tensor {
    /// XXH64 over every stored byte (codes, scales, nested scales and offset): what a quantized cache
    /// records, so a flipped byte is found before the weight is used.
    public var checksum: UInt64 {
        var h = packed.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), UInt64(blocksize)) }
        func mix<T>(_ a: [T]) { h = a.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), h) } }
        switch scales {
        case .plain(let a): mix(a)
        case .double(let codes, let nested, let offset, let nb):
            mix(codes); mix(nested); mix([offset]); mix([Int64(nb)])
        }
        mix(shape.map(Int64.init))
        return h
    }
}
