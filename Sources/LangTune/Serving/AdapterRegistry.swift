import Foundation

/// The LoRA adapters a server offers, by name, over one base model. Loading and unloading happen while
/// requests run: a request holds its adapter from admission to its end, so unloading only stops new
/// requests from naming it.
public final class AdapterRegistry: @unchecked Sendable {
    private let lock = NSLock()
    private var adapters: [String: LoRAAdapter] = [:]
    private var order: [String] = []
    let model: LlamaConfig

    public init(model: LlamaConfig) { self.model = model }

    /// Loads a PEFT adapter folder under `name`.
    public func load(name: String, path: String) throws(ServingError) {
        guard !name.isEmpty else { throw .adapterInvalid("the adapter name is empty") }
        let adapter: LoRAAdapter
        do { adapter = try LoRAAdapter.load(from: path, model: model) } catch { throw .adapterInvalid("\(path): \(error)") }
        try add(name: name, adapter: adapter)
    }

    /// Offers an adapter already in memory under `name`.
    public func add(name: String, adapter: LoRAAdapter) throws(ServingError) {
        lock.lock()
        defer { lock.unlock() }
        guard adapters[name] == nil else { throw .adapterExists(name) }
        adapters[name] = adapter
        order.append(name)
    }

    /// Stops offering `name`.
    public func unload(name: String) throws(ServingError) {
        lock.lock()
        defer { lock.unlock() }
        guard adapters.removeValue(forKey: name) != nil else { throw .adapterNotLoaded(name) }
        order.removeAll { $0 == name }
    }

    /// The adapter called `name`, nil if none is.
    public func adapter(named name: String) -> LoRAAdapter? {
        lock.lock()
        defer { lock.unlock() }
        return adapters[name]
    }

    /// Names in the order they were loaded.
    public var names: [String] {
        lock.lock()
        defer { lock.unlock() }
        return order
    }
}
