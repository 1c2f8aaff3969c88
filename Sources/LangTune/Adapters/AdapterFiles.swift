import Foundation

/// PEFT's on-disk adapter: `adapter_config.json` + `adapter_model.safetensors`.
extension LoRAAdapter {
    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"

    /// Writes the adapter as PEFT (0.17 and later) does for a causal LM:
    /// `adapter_config.json` and float32 `adapter_model.safetensors` (A `[r, in]`,
    /// B `[out, r]`, metadata `{"format": "pt"}`). `dir` is created if missing.
    ///
    /// Both files are written in full to temporary files before either replaces
    /// an existing one, so an error never leaves a half-written adapter behind.
    public func save(to dir: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw FormatError(file: dir, "cannot create the adapter folder: \(error.localizedDescription)")
        }
        let configPath = (dir as NSString).appendingPathComponent(Self.configFileName)
        let weightsPath = (dir as NSString).appendingPathComponent(Self.weightsFileName)
        let configBytes = peftConfig().serialized()
        var st = SafetensorsWriter(metadata: ["format": "pt"])
        for (i, layer) in layers.enumerated() {
            for (t, w) in layer.sorted(by: { $0.key < $1.key }) {
                try st.addTensor(floatTensor(w.a, shape: [w.rank, w.inFeatures]),
                                 name: Self.peftName(layer: i, target: t, matrix: "A", root: config.moduleRoot))
                try st.addTensor(floatTensor(w.b, shape: [w.outFeatures, w.rank]),
                                 name: Self.peftName(layer: i, target: t, matrix: "B", root: config.moduleRoot))
            }
        }
        let weightBytes: [UInt8]
        do { weightBytes = try st.serialized() } catch let e as FormatError {
            throw FormatError(file: weightsPath, e.problem)
        }
        var weights = try AtomicFileWriter(path: weightsPath)
        do { try weights.write(weightBytes) } catch { weights.abandon(); throw error }
        var config: AtomicFileWriter
        do { config = try AtomicFileWriter(path: configPath) } catch { weights.abandon(); throw error }
        do { try config.write(configBytes) } catch { config.abandon(); weights.abandon(); throw error }
        // The small config stays buffered, so after the weights land only its
        // own write, sync and rename remain.
        do { try weights.commit() } catch { config.abandon(); throw error }
        try config.commit()
    }

    /// The scale PEFT applies with `rank`/`alpha` (alpha/r, or alpha/√r with rsLoRA), in float64.
    static func peftScale(alpha: Double, rank: Int, rsLoRA: Bool) -> Double {
        rsLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank)
    }

    /// adapter_config.json, keys sorted as PEFT writes them.
    func peftConfig() -> JSONText {
        let c = config
        let scale = Self.peftScale(alpha: c.alpha, rank: c.rank, rsLoRA: c.useRSLoRA)
        // Modules whose rank differs from `r` (only from files with rank_pattern) get a
        // rank_pattern entry and the alpha that keeps their scale equal to the adapter's.
        var rankPattern: [(String, JSONText)] = []
        var alphaPattern: [(String, JSONText)] = []
        var usedLayers: [Int] = []
        var targetSets = Set<[LoRATarget]>()
        for (i, layer) in layers.enumerated() where !layer.isEmpty {
            usedLayers.append(i)
            targetSets.insert(layer.keys.sorted())
            for (t, w) in layer.sorted(by: { $0.key < $1.key }) where w.rank != c.rank {
                let key = NSRegularExpression.escapedPattern(for: Self.modulePath(layer: i, target: t, root: c.moduleRoot))
                rankPattern.append((key, .int(w.rank)))
                let alpha = c.useRSLoRA ? scale * Double(w.rank).squareRoot() : scale * Double(w.rank)
                alphaPattern.append((key, Self.number(alpha)))
            }
        }
        let targetModules: JSONText
        var layersToTransform: JSONText = .null
        if let root = c.moduleRoot, targetSets.count <= 1 {
            // A multimodal model: a plain list of names would also match its vision tower's
            // q/k/v projections, so the language model's modules are named by a regex PEFT full-matches.
            let targets = (targetSets.first ?? c.targets).map { "\($0.block)\\.\($0.rawValue)" }.sorted()
            let layerIndices = usedLayers.count == layers.count ? "[0-9]+" : "(" + usedLayers.map(String.init).joined(separator: "|") + ")"
            targetModules = .string(NSRegularExpression.escapedPattern(for: root) + "\\.layers\\.\(layerIndices)\\.("
                                    + targets.joined(separator: "|") + ")")
        } else if targetSets.count <= 1 {
            let targets = targetSets.first ?? c.targets
            targetModules = .array(targets.map(\.rawValue).sorted().map { .string($0) })  // PEFT sorts the names
            if usedLayers.count != layers.count { layersToTransform = .array(usedLayers.map { .int($0) }) }
        } else {
            // Different targets per layer: PEFT full-matches a string target_modules as a regex.
            var names: [String] = []
            for (i, layer) in layers.enumerated() {
                for t in layer.keys.sorted() {
                    names.append(NSRegularExpression.escapedPattern(for: Self.modulePath(layer: i, target: t, root: c.moduleRoot)))
                }
            }
            targetModules = .string(names.joined(separator: "|"))
        }
        let members: [(String, JSONText)] = [
            ("alpha_pattern", .object(alphaPattern)),
            ("auto_mapping", .null),
            ("base_model_name_or_path", c.baseModel.isEmpty ? .null : .string(c.baseModel)),
            ("bias", .string("none")),
            ("corda_config", .null),
            ("eva_config", .null),
            ("exclude_modules", .null),
            ("fan_in_fan_out", .bool(false)),
            ("inference_mode", .bool(true)),
            ("init_lora_weights", .bool(true)),
            ("layer_replication", .null),
            ("layers_pattern", .null),
            ("layers_to_transform", layersToTransform),
            ("loftq_config", .object([])),
            ("lora_alpha", Self.number(c.alpha)),
            ("lora_bias", .bool(false)),
            ("lora_dropout", .double(c.dropout)),
            ("megatron_config", .null),
            ("megatron_core", .string("megatron.core")),
            ("modules_to_save", .null),
            ("peft_type", .string("LORA")),
            ("qalora_group_size", .int(16)),
            ("r", .int(c.rank)),
            ("rank_pattern", .object(rankPattern)),
            ("revision", .null),
            ("target_modules", targetModules),
            ("target_parameters", .null),
            ("task_type", .string("CAUSAL_LM")),
            ("trainable_token_indices", .null),
            ("use_dora", .bool(false)),
            ("use_qalora", .bool(false)),
            ("use_rslora", .bool(c.useRSLoRA)),
        ]
        return .object(members)
    }

    /// An integral value as a JSON integer (as PEFT users write alpha), else a float.
    static func number(_ x: Double) -> JSONText {
        x.rounded() == x && abs(x) < 1e15 ? .int(Int(x)) : .double(x)
    }

    private func floatTensor(_ buffer: FloatBuffer, shape: [Int]) -> WeightTensor {
        let n = shape.reduce(1, *)
        precondition(n == buffer.count, "LoRA matrix of \(buffer.count) values does not fill \(shape)")
        let storage = ByteStorage(base: UnsafeRawPointer(buffer.pointer), count: n * 4) { _, _ in _ = buffer }
        return WeightTensor(name: "", shape: shape, dtype: .f32, storage: storage, offset: 0, byteCount: n * 4)
    }
}

// MARK: - Loading

extension LoRAAdapter {
    /// Loads a PEFT LoRA adapter folder for a model of shape `model`.
    ///
    /// Accepts what PEFT writes: float32/float16/bfloat16 tensors, keys with or
    /// without the adapter name (`lora_A.default.weight`), a subset of layers
    /// (`layers_to_transform`, or modules simply absent), rsLoRA, and per-module
    /// `rank_pattern`/`alpha_pattern`. A module whose scale differs from the
    /// adapter's (alpha/r) has it folded into its B matrix, so every module of
    /// the returned adapter uses `config.scale`.
    ///
    /// Refuses, naming the file: a missing or invalid config, `peft_type` other
    /// than LORA, DoRA, `fan_in_fan_out`, bias training, `modules_to_save`,
    /// unknown modules, a rank that disagrees with the config, and matrices whose
    /// shape does not fit `model`.
    public static func load(from dir: String, model: LlamaConfig) throws -> LoRAAdapter {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) else {
            throw FormatError(file: dir, "no such adapter folder")
        }
        guard isDir.boolValue else {
            throw FormatError(file: dir, "not a folder; an adapter is a folder with \(configFileName) and \(weightsFileName)")
        }
        let configPath = (dir as NSString).appendingPathComponent(configFileName)
        let weightsPath = (dir as NSString).appendingPathComponent(weightsFileName)
        guard FileManager.default.fileExists(atPath: configPath) else {
            throw FormatError(file: configPath, "missing: not a PEFT adapter folder")
        }
        let settings = try PEFTAdapterSettings(path: configPath, data: readFile(configPath))
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            let bin = (dir as NSString).appendingPathComponent("adapter_model.bin")
            if FileManager.default.fileExists(atPath: bin) {
                throw FormatError(file: bin, "pickled adapters are not supported; save it with safe_serialization=True (adapter_model.safetensors)")
            }
            throw FormatError(file: weightsPath, "missing")
        }
        let file = try SafetensorsFile(path: weightsPath)
        return try assemble(settings: settings, tensors: file.tensors, model: model, file: weightsPath)
    }

    /// Builds an adapter from PEFT tensors after checking them against `settings` and `model`.
    static func assemble(settings s: PEFTAdapterSettings, tensors: [WeightTensor], model: LlamaConfig,
                         file: String) throws -> LoRAAdapter {
        func fail(_ p: String) -> FormatError { FormatError(file: file, p) }
        struct Key: Hashable { var layer: Int; var target: LoRATarget }
        var aMatrices: [Key: WeightTensor] = [:], bMatrices: [Key: WeightTensor] = [:]
        var modules: [Key: String] = [:]
        for t in tensors {
            guard let (layer, target, matrix, module) = parsePEFTName(t.name) else {
                throw fail("tensor \"\(t.name)\" is not a LoRA matrix of a supported module (\(LoRATarget.allCases.map(\.rawValue).joined(separator: ", ")) in model.layers.N, or in model.language_model.layers.N of a multimodal Gemma 3)")
            }
            guard layer < model.numLayers else {
                throw fail("tensor \"\(t.name)\" is for layer \(layer), but the model has \(model.numLayers) layers")
            }
            if let allowed = s.layersToTransform, !allowed.contains(layer) {
                throw fail("tensor \"\(t.name)\" is for layer \(layer), outside layers_to_transform \(allowed.sorted())")
            }
            guard [.f32, .f16, .bf16, .f64].contains(t.dtype) else {
                throw fail("tensor \"\(t.name)\" is \(t.dtype); LoRA matrices must be F32, F16, BF16 or F64")
            }
            let key = Key(layer: layer, target: target)
            if let other = modules.updateValue(module, forKey: key), other != module {
                throw fail("tensor \"\(t.name)\" names module \(module), another tensor \(other)")
            }
            if matrix == "A" {
                guard aMatrices.updateValue(t, forKey: key) == nil else { throw fail("tensor \"\(t.name)\" appears twice") }
            } else {
                guard bMatrices.updateValue(t, forKey: key) == nil else { throw fail("tensor \"\(t.name)\" appears twice") }
            }
        }
        guard !aMatrices.isEmpty || !bMatrices.isEmpty else { throw fail("holds no LoRA matrices") }
        let scale = peftScale(alpha: s.alpha, rank: s.rank, rsLoRA: s.useRSLoRA)
        var layers = [[LoRATarget: LoRAWeights]](repeating: [:], count: model.numLayers)
        for key in Set(aMatrices.keys).union(bMatrices.keys).sorted(by: { ($0.layer, $0.target) < ($1.layer, $1.target) }) {
            let aName = peftName(layer: key.layer, target: key.target, matrix: "A")
            let bName = peftName(layer: key.layer, target: key.target, matrix: "B")
            guard let a = aMatrices[key] else { throw fail("tensor \"\(bName)\" has no matching \"\(aName)\"") }
            guard let b = bMatrices[key] else { throw fail("tensor \"\(aName)\" has no matching \"\(bName)\"") }
            let module = modules[key] ?? modulePath(layer: key.layer, target: key.target)
            let (rank, alpha) = try s.rankAndAlpha(module: module)
            let (out, inF) = key.target.shape(model)
            guard a.shape.count == 2, b.shape.count == 2 else {
                throw fail("tensor \"\(a.shape.count != 2 ? a.name : b.name)\" is not a matrix (shape \(a.shape.count != 2 ? a.shape : b.shape))")
            }
            guard a.shape[0] == rank else {
                throw fail("rank mismatch: tensor \"\(a.name)\" has rank \(a.shape[0]) (shape \(a.shape)), but \(configFileName) says r = \(rank) for \(module)")
            }
            guard b.shape[1] == rank else {
                throw fail("rank mismatch: tensor \"\(b.name)\" has rank \(b.shape[1]) (shape \(b.shape)), but \(configFileName) says r = \(rank) for \(module)")
            }
            guard a.shape[1] == inF else {
                throw fail("tensor \"\(a.name)\" has shape \(a.shape), expected [\(rank), \(inF)] for this model's \(key.target.rawValue) (\(out)×\(inF))")
            }
            guard b.shape[0] == out else {
                throw fail("tensor \"\(b.name)\" has shape \(b.shape), expected [\(out), \(rank)] for this model's \(key.target.rawValue) (\(out)×\(inF))")
            }
            let aValues: [Float], bValues: [Float]
            do {
                aValues = try dequantize(a)
                bValues = try dequantize(b)
            } catch let e as FormatError {
                throw fail("tensor \"\(e.file)\": \(e.problem)")
            }
            let bBuffer = FloatBuffer(bValues)
            let moduleScale = peftScale(alpha: alpha, rank: rank, rsLoRA: s.useRSLoRA)
            if moduleScale != scale {
                guard scale != 0 else {
                    throw fail("\(module) has scale \(moduleScale) from rank_pattern/alpha_pattern while the adapter's lora_alpha is 0; this cannot be represented")
                }
                let ratio = moduleScale / scale
                if abs(ratio - 1) > 1e-12 {
                    for i in 0..<bBuffer.count { bBuffer[i] = Float(Double(bBuffer[i]) * ratio) }
                }
            }
            layers[key.layer][key.target] = LoRAWeights(rank: rank, inFeatures: inF, outFeatures: out,
                                                        a: FloatBuffer(aValues), b: bBuffer)
        }
        let targets = Set(layers.flatMap(\.keys)).sorted()
        var config = LoRAConfig(rank: s.rank, alpha: s.alpha, dropout: s.dropout, targets: targets,
                                useRSLoRA: s.useRSLoRA, baseModel: s.baseModel ?? "")
        config.moduleRoot = model.adapterModuleRoot
        return LoRAAdapter(config: config, layers: layers)
    }

    /// (layer, target, "A"/"B", module path) of a PEFT tensor name such as
    /// `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` or
    /// `….lora_B.default.weight`; nil for anything else. The language model of a
    /// `Gemma3ForConditionalGeneration` is accepted under both of transformers' layouts:
    /// `model.language_model.layers.N…` (transformers 5) and `language_model.model.layers.N…` (4.x).
    /// The module path (`model.language_model.layers.3.self_attn.q_proj`) is what PEFT matches
    /// `rank_pattern` and `alpha_pattern` against.
    static func parsePEFTName(_ name: String) -> (Int, LoRATarget, String, String)? {
        var parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        if parts.starts(with: ["base_model", "model"]) { parts.removeFirst(2) }
        var prefix = ["model"]
        for multimodal in [["model", "language_model"], ["language_model", "model"]] where parts.starts(with: multimodal) {
            prefix = multimodal
            parts.replaceSubrange(0..<2, with: ["model"])
        }
        // model.layers.N.block.target.lora_X[.adapter].weight
        guard parts.count == 7 || parts.count == 8, parts[0] == "model", parts[1] == "layers",
              let layer = Int(parts[2]), layer >= 0, String(layer) == parts[2],
              let target = LoRATarget(rawValue: parts[4]), parts[3] == target.block,
              parts.last == "weight" else { return nil }
        let matrix: String
        switch parts[5] {
        case "lora_A": matrix = "A"
        case "lora_B": matrix = "B"
        default: return nil
        }
        return (layer, target, matrix, (prefix + parts[1..<5]).joined(separator: "."))
    }
}

/// What LangTune reads from a PEFT `adapter_config.json`, checked.
struct PEFTAdapterSettings {
    var rank: Int
    var alpha: Double
    var dropout: Double
    var useRSLoRA: Bool
    var baseModel: String?
    var layersToTransform: Set<Int>?
    /// (regex, rank) and (regex, alpha) in file order; PEFT uses the first that matches.
    var rankPattern: [(NSRegularExpression, Int)] = []
    var alphaPattern: [(NSRegularExpression, Double)] = []

    init(path: String, data: Data) throws {
        func fail(_ p: String) -> FormatError { FormatError(file: path, p) }
        let root: JSONValue
        do { root = try MiniJSONParser.parse(data) } catch {
            throw fail("not valid JSON: \(error.message) at byte \(error.offset)")
        }
        guard root.object != nil else { throw fail("not a JSON object") }
        func present(_ key: String) -> JSONValue? {
            guard let v = root[key], !v.isNull else { return nil }
            return v
        }
        guard let type = present("peft_type") else { throw fail("peft_type is missing; not a PEFT adapter config") }
        guard type.string == "LORA" else {
            throw fail("peft_type is \(type.string.map { "\"\($0)\"" } ?? "not a string"); only LORA adapters are supported")
        }
        if let task = present("task_type"), task.string != "CAUSAL_LM" {
            throw fail("task_type is \(task.string.map { "\"\($0)\"" } ?? "not a string"); only CAUSAL_LM adapters are supported")
        }
        guard let r = present("r")?.int else { throw fail("r is missing or not an integer") }
        guard r >= 1 else { throw fail("r must be at least 1, got \(r)") }
        rank = r
        if let a = present("lora_alpha") {
            guard let x = a.number, x.isFinite else { throw fail("lora_alpha is not a number") }
            alpha = x
        } else {
            alpha = 8  // PEFT's default
        }
        if let d = present("lora_dropout") {
            guard let x = d.number, x >= 0, x < 1 else { throw fail("lora_dropout must be a number in [0, 1)") }
            dropout = x
        } else {
            dropout = 0
        }
        func flag(_ key: String) throws -> Bool {
            guard let v = present(key) else { return false }
            guard let b = v.bool else { throw fail("\(key) is not a boolean") }
            return b
        }
        useRSLoRA = try flag("use_rslora")
        if try flag("use_dora") { throw fail("use_dora is true: DoRA adapters are not supported") }
        if try flag("fan_in_fan_out") {
            throw fail("fan_in_fan_out is true (GPT-2 Conv1D layout); Llama-family adapters store A [r, in] and B [out, r]")
        }
        if try flag("lora_bias") { throw fail("lora_bias is true: LoRA bias terms are not supported") }
        if try flag("use_qalora") { throw fail("use_qalora is true: QA-LoRA adapters are not supported") }
        if let b = present("bias"), b.string != "none" {
            throw fail("bias is \(b.string.map { "\"\($0)\"" } ?? "not a string"); only \"none\" is supported (trained biases are not)")
        }
        if let m = present("modules_to_save"), !(m.array?.isEmpty ?? false) {
            throw fail("modules_to_save is set (\(Self.describe(m))): adapters that also replace whole modules are not supported")
        }
        for key in ["layer_replication", "trainable_token_indices", "alora_invocation_tokens"] {
            if let v = present(key), !(v.array?.isEmpty ?? false), !(v.object.map { $0.keys.isEmpty } ?? false) {
                throw fail("\(key) is set (\(Self.describe(v))); not supported")
            }
        }
        if let p = present("target_parameters"), !(p.array?.isEmpty ?? false) {
            throw fail("target_parameters is set (\(Self.describe(p))); only linear modules are supported")
        }
        if let t = present("target_modules") {
            if let list = t.array {
                for item in list {
                    guard let name = item.string else { throw fail("target_modules holds a non-string") }
                    guard LoRATarget(rawValue: name) != nil else {
                        throw fail("target module \"\(name)\" is not supported (supported: \(LoRATarget.allCases.map(\.rawValue).joined(separator: ", ")))")
                    }
                }
            } else if t.string == nil {
                throw fail("target_modules is neither a list nor a string")
            }
            // A string is a regex (or "all-linear"): the tensors present say which modules it chose.
        }
        baseModel = present("base_model_name_or_path")?.string
        if let l = present("layers_to_transform") {
            if let i = l.int { layersToTransform = [i] }
            else if let list = l.array {
                var set = Set<Int>()
                for v in list {
                    guard let i = v.int else { throw fail("layers_to_transform holds a non-integer") }
                    set.insert(i)
                }
                layersToTransform = set
            } else { throw fail("layers_to_transform is neither an integer nor a list") }
        }
        func patterns(_ key: String) throws -> [(NSRegularExpression, Double)] {
            guard let v = present(key) else { return [] }
            guard let o = v.object else { throw fail("\(key) is not an object") }
            var out: [(NSRegularExpression, Double)] = []
            for (k, value) in zip(o.keys, o.values) {
                guard let x = value.number else { throw fail("\(key)[\"\(k)\"] is not a number") }
                do {
                    // PEFT: re.match(rf"(.*\.)?({key})$", module_name)
                    out.append((try NSRegularExpression(pattern: "^(?:.*\\.)?(?:\(k))$"), x))
                } catch {
                    throw fail("\(key) key \"\(k)\" is not a regular expression LangTune can use")
                }
            }
            return out
        }
        rankPattern = try patterns("rank_pattern").map { p, x in
            guard x.rounded() == x, x >= 1, x < 1e9 else { throw fail("rank_pattern rank \(x) is not a positive integer") }
            return (p, Int(x))
        }
        alphaPattern = try patterns("alpha_pattern")
    }

    /// The rank and alpha PEFT gives `module` (`model.layers.3.self_attn.q_proj`).
    func rankAndAlpha(module: String) throws -> (Int, Double) {
        func first<T>(_ list: [(NSRegularExpression, T)]) -> T? {
            let range = NSRange(module.startIndex..., in: module)
            return list.first { $0.0.firstMatch(in: module, range: range) != nil }?.1
        }
        return (first(rankPattern) ?? rank, first(alphaPattern) ?? alpha)
    }

    private static func describe(_ v: JSONValue) -> String {
        if let s = v.string { return "\"\(s)\"" }
        if let a = v.array { return "[" + a.map { $0.string ?? "\($0.int.map(String.init) ?? "…")" }.joined(separator: ", ") + "]" }
        return "\(v)"
    }
}
