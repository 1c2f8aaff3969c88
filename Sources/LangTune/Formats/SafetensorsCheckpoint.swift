import Foundation

/// The tensors of a Hugging Face checkpoint: one `model.safetensors`, or the
/// shards listed by `model.safetensors.index.json`.
public struct SafetensorsCheckpoint: Sendable {
    /// The files read, in the order first met.
    public let files: [SafetensorsFile]
    /// Every tensor by name (names are unique across shards).
    public let tensors: [String: WeightTensor]
    /// The file each tensor came from.
    public let fileOfTensor: [String: String]

    /// Loads a single `.safetensors` file, or an `.index.json` and its shards.
    public init(path: String) throws {
        if path.hasSuffix(".json") {
            try self.init(indexPath: path)
        } else {
            try self.init(files: [SafetensorsFile(path: path)], index: nil)
        }
    }

    /// Loads the shards named by a `model.safetensors.index.json` (`weight_map`:
    /// tensor name → shard file in the same folder). Every listed tensor must
    /// be in its shard.
    public init(indexPath: String) throws {
        struct Index: Decodable { let weight_map: [String: String] }
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: indexPath)) } catch {
            throw FormatError(file: indexPath, "cannot read: \(error.localizedDescription)")
        }
        let index: Index
        do { index = try JSONDecoder().decode(Index.self, from: data) } catch {
            throw FormatError(file: indexPath, "not a safetensors index: \(describeDecodingError(error))")
        }
        let folder = (indexPath as NSString).deletingLastPathComponent
        var shardNames: [String] = []
        for shard in Set(index.weight_map.values).sorted() {
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw FormatError(file: indexPath, "shard name \"\(shard)\" is not a file name in the same folder")
            }
            shardNames.append(shard)
        }
        guard !shardNames.isEmpty else { throw FormatError(file: indexPath, "weight_map lists no tensors") }
        let files = try shardNames.map { try SafetensorsFile(path: (folder as NSString).appendingPathComponent($0)) }
        let byName = Dictionary(uniqueKeysWithValues: zip(shardNames, files))
        for (tensor, shard) in index.weight_map.sorted(by: { $0.key < $1.key }) {
            guard byName[shard]!.contains(tensor) else {
                throw FormatError(file: byName[shard]!.path, "tensor \"\(tensor)\" listed in \((indexPath as NSString).lastPathComponent) is missing from this shard")
            }
        }
        try self.init(files: files, index: indexPath)
    }

    private init(files: [SafetensorsFile], index: String?) throws {
        var tensors: [String: WeightTensor] = [:]
        var fileOf: [String: String] = [:]
        for f in files {
            for t in f.tensors {
                if let other = fileOf[t.name] {
                    throw FormatError(file: f.path, "tensor \"\(t.name)\" is also in \(other)")
                }
                tensors[t.name] = t
                fileOf[t.name] = f.path
            }
        }
        self.files = files
        self.tensors = tensors
        self.fileOfTensor = fileOf
    }
}
