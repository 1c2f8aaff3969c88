import CLangTuneKernels
import Foundation

/// QLoRA's NF4 base on disk, so a second run on the same model does not quantize again.
///
/// One folder per (source model, quantization settings) under `root`, named by a hash of both:
/// `model.safetensors` in bitsandbytes' 4-bit state-dict layout (the layout `langtune quantize`
/// writes; transformers + bitsandbytes read it) and `langtune-nf4-cache.json`, the manifest: the
/// source's fingerprint, each tensor's shape and XXH64 checksum. Before a cached weight is used,
/// its shape and checksum are checked; a cache that is corrupt, truncated, from another source
/// or for other settings is rebuilt, and the caller is told why (`Outcome.rebuilt`).
///
/// The source fingerprint is the weight files' sizes and modification times plus, per targeted
/// tensor, its name, type, shape and the XXH64 of its first and last 64 KiB: cheap enough not to
/// read an 8B model's 14 GB on every run, and any edit, copy or re-download changes it.
public struct QuantizedBaseCache: Sendable {
    public let root: String

    public init(root: String) { self.root = root }

    /// `$LANGTUNE_HOME/cache/nf4` (default `~/.cache/langtune/cache/nf4`).
    public static var defaultRoot: String { LangTuneHome.url.appendingPathComponent("cache/nf4").path }

    public enum Outcome: Sendable, Equatable, CustomStringConvertible {
        /// Read from this folder, every checksum matching.
        case hit(String)
        /// Quantized and written to this folder (there was no cache).
        case built(String)
        /// The folder's cache could not be used (the reason), so it was quantized and written again.
        case rebuilt(String, reason: String)
        /// Quantized, but the cache could not be written (the reason); the run goes on without it.
        case notWritten(String, reason: String)

        public var description: String {
            switch self {
            case .hit(let d): return "NF4 base read from the cache \(d)"
            case .built(let d): return "NF4 base quantized and cached in \(d)"
            case .rebuilt(let d, let why): return "NF4 cache \(d) not used (\(why)); quantized again and rewritten"
            case .notWritten(let d, let why): return "NF4 base quantized; the cache \(d) could not be written (\(why))"
            }
        }
    }

    static let manifestName = "langtune-nf4-cache.json"
    static let weightsName = "model.safetensors"

    struct Manifest: Codable {
        var format = "langtune-nf4-cache"
        var version = 1
        var source: String
        var fingerprint: String
        var doubleQuant: Bool
        var blocksize: Int
        var tensors: [Entry]
        struct Entry: Codable { var name: String; var shape: [Int]; var xxh64: String }
    }

    struct Problem: Error { let reason: String }

    /// The NF4 weights of `quantization`'s targets in `files`: from the cache when it holds a good
    /// copy, else quantized (with `threads`) and cached. Targets that are NF4 already, or that keep a
    /// GGUF's own blocks (`keepSourceBlocks`), are not NF4-quantized; with none left there is no
    /// cache and no outcome.
    public func weights(for files: ModelFiles, quantization q: FrozenQuantization, threads: Threads) throws
        -> (nf4: [String: NF4Tensor], outcome: Outcome?) {
        let names = ModelFiles.requiredTensors(files.config).filter {
            $0.shape.count == 2 && ModelExporter.isTarget($0.name, q) && files.nf4[$0.name] == nil
                && !(q.keepSourceBlocks && files.tensors[$0.name]?.dtype.isQuantized == true)
        }
        if names.isEmpty { return ([:], nil) }
        let fingerprint = try Self.fingerprint(files, names: names.map(\.name), doubleQuant: q.doubleQuant)
        let key = String(format: "%016llx", fingerprint.utf8CString.withUnsafeBytes { lt_xxh64($0.baseAddress, Int64($0.count), 0) })
        let dir = (root as NSString).appendingPathComponent(key)
        var problem: String?
        if FileManager.default.fileExists(atPath: dir) {
            do { return (try load(dir, fingerprint: fingerprint, expected: names), .hit(dir)) } catch let p as Problem {
                problem = p.reason
            }
        }
        var nf4: [String: NF4Tensor] = [:]
        for (name, shape) in names {
            guard let t = files.tensors[name] else { throw FormatError(file: files.path, "missing tensor \(name)") }
            nf4[name] = NF4Tensor.quantize(try dequantize(t), shape: shape, doubleQuant: q.doubleQuant, threads: threads)
        }
        do {
            try store(nf4, names: names.map(\.name), in: dir, source: files.path, fingerprint: fingerprint, doubleQuant: q.doubleQuant)
        } catch {
            return (nf4, .notWritten(dir, reason: "\(error)"))
        }
        return (nf4, problem.map { .rebuilt(dir, reason: $0) } ?? .built(dir))
    }

    /// Reads and checks a cache folder; throws `Problem` with what is wrong.
    func load(_ dir: String, fingerprint: String, expected: [(name: String, shape: [Int])]) throws -> [String: NF4Tensor] {
        let manifestPath = (dir as NSString).appendingPathComponent(Self.manifestName)
        let manifest: Manifest
        do { manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath))) } catch {
            throw Problem(reason: "\(Self.manifestName) is missing or unreadable")
        }
        guard manifest.format == "langtune-nf4-cache", manifest.version == 1 else {
            throw Problem(reason: "\(Self.manifestName) is not a version-1 LangTune NF4 cache")
        }
        guard manifest.fingerprint == fingerprint else { throw Problem(reason: "it was made from another source file or settings") }
        let weightsPath = (dir as NSString).appendingPathComponent(Self.weightsName)
        let nf4: [String: NF4Tensor]
        do {
            let file = try SafetensorsFile(path: weightsPath)
            let byName = Dictionary(file.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
            nf4 = try BitsAndBytesNF4.extract(byName) { _ in weightsPath }.nf4
        } catch {
            throw Problem(reason: "\(error)")
        }
        let entries = Dictionary(manifest.tensors.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [String: NF4Tensor] = [:]
        for (name, shape) in expected {
            guard let e = entries[name], let t = nf4[name] else { throw Problem(reason: "tensor \(name) is missing") }
            guard e.shape == shape, t.shape == shape else {
                throw Problem(reason: "tensor \(name) has shape \(t.shape) (manifest \(e.shape)), the model needs \(shape)")
            }
            guard String(format: "%016llx", t.checksum) == e.xxh64 else { throw Problem(reason: "tensor \(name) fails its checksum") }
            out[name] = t
        }
        return out
    }

    /// Writes the cache into a temporary folder beside `dir`, then renames it into place.
    func store(_ nf4: [String: NF4Tensor], names: [String], in dir: String, source: String, fingerprint: String, doubleQuant: Bool) throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: root, withIntermediateDirectories: true)
        let tmp = dir + ".tmp-\(getpid())"
        try? fm.removeItem(atPath: tmp)
        try fm.createDirectory(atPath: tmp, withIntermediateDirectories: true)
        do {
            var st = SafetensorsStreamWriter(metadata: ["format": "pt", "langtune": "nf4-cache"])
            for name in names { try ModelExporter.addNF4(&st, name: name, nf4[name]!, dtypeName: "float32") }
            try st.write(to: (tmp as NSString).appendingPathComponent(Self.weightsName))
            let manifest = Manifest(source: source, fingerprint: fingerprint, doubleQuant: doubleQuant,
                                    blocksize: nf4.values.first?.blocksize ?? 64,
                                    tensors: names.map { Manifest.Entry(name: $0, shape: nf4[$0]!.shape,
                                                                        xxh64: String(format: "%016llx", nf4[$0]!.checksum)) })
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try AtomicWrite.data(try encoder.encode(manifest), to: (tmp as NSString).appendingPathComponent(Self.manifestName))
            try? fm.removeItem(atPath: dir)
            try fm.moveItem(atPath: tmp, toPath: dir)
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// What identifies the source weights and settings (see the type's documentation).
    static func fingerprint(_ files: ModelFiles, names: [String], doubleQuant: Bool) throws -> String {
        var parts = ["nf4 blocksize=64 double_quant=\(doubleQuant) nested_blocksize=256"]
        let fm = FileManager.default
        var isDir: ObjCBool = false
        var weightFiles: [String] = [files.path]
        if fm.fileExists(atPath: files.path, isDirectory: &isDir), isDir.boolValue {
            let entries = (try? fm.contentsOfDirectory(atPath: files.path)) ?? []
            weightFiles = entries.filter { $0.hasSuffix(".safetensors") }.sorted().map { (files.path as NSString).appendingPathComponent($0) }
        }
        for f in weightFiles {
            let a = try? fm.attributesOfItem(atPath: f)
            let size = (a?[.size] as? NSNumber)?.int64Value ?? -1
            let mtime = (a?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
            parts.append("\((f as NSString).lastPathComponent) \(size) \(mtime)")
        }
        for name in names {
            guard let t = files.tensors[name] else { throw FormatError(file: files.path, "missing tensor \(name)") }
            let b = t.bytes
            let n = min(b.count, 65_536)
            let head = lt_xxh64(b.baseAddress, Int64(n), 0)
            let tail = lt_xxh64(b.baseAddress.map { $0 + (b.count - n) }, Int64(n), 0)
            parts.append("\(name) \(t.dtype) \(t.shape) \(String(format: "%016llx %016llx", head, tail))")
        }
        return parts.joined(separator: "\n")
    }
}
