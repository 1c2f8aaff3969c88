/// A stored tensor as a file holds it: shape, element type and raw bytes.
///
/// `shape` is in Hugging Face / PyTorch order, outermost first: a linear
/// layer's weight is `[out, in]`, whatever the source format (GGUF lists
/// dimensions innermost first; readers reverse them). Rows are contiguous,
/// and for block-quantized types each row is a whole number of blocks.
public struct WeightTensor: Sendable {
    public let name: String
    public let shape: [Int]
    public let dtype: DType
    /// Keeps the bytes alive (a mapped file or a heap buffer).
    public let storage: ByteStorage
    /// Offset of the first byte inside `storage`.
    public let offset: Int
    /// Number of bytes the tensor occupies.
    public let byteCount: Int

    public init(name: String, shape: [Int], dtype: DType, storage: ByteStorage, offset: Int, byteCount: Int) {
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.storage = storage
        self.offset = offset
        self.byteCount = byteCount
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var bytes: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: storage.base + offset, count: byteCount)
    }
    /// Rows of the tensor seen as a matrix `[rows, cols]` with cols = innermost dimension.
    public var rows: Int { shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *) }
    public var cols: Int { shape.last ?? 1 }
}
