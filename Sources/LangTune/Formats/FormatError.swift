/// A model, tokenizer or data file that cannot be used, with the file and the problem named.
public struct FormatError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let problem: String
    public init(file: String, _ problem: String) {
        self.file = file
        self.problem = problem
    }
    public var description: String { "\(file): \(problem)" }
}
