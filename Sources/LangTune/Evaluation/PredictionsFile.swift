import Foundation

/// Answers produced elsewhere, to score without a model: JSON Lines of
/// `{"id", "prediction", "references": [...], "language": "tr"|"zh"|"en"}`.
///
/// `language` selects the comparison rules (`zh`: CMRC 2018; `tr`: Turkish lower-casing then
/// SQuAD; anything else: SQuAD); when absent it is detected from the references. An empty
/// prediction is allowed and scores 0 (unless a reference is empty after normalization).
public enum PredictionsFile {
    public static func read(_ path: String) throws -> [(item: EvalItem, prediction: String)] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DatasetError(file: path, "cannot read the file (missing or unreadable)")
        }
        var out: [(EvalItem, String)] = []
        for (line, bytes) in DatasetReader.jsonLines(data) {
            let loc = "line \(line)"
            guard let obj = try DatasetReader.json(bytes, path, loc) as? [String: Any] else {
                throw DatasetError(file: path, location: loc, "not a JSON object")
            }
            guard let prediction = obj["prediction"] as? String else {
                throw DatasetError(file: path, location: loc, obj["prediction"] == nil ? "missing field \"prediction\"" : "field \"prediction\" is not a string")
            }
            guard let refs = obj["references"] as? [Any] else {
                throw DatasetError(file: path, location: loc, "missing \"references\" array")
            }
            let references = try refs.enumerated().map { i, r -> String in
                guard let s = r as? String else { throw DatasetError(file: path, location: loc, "references[\(i)] is not a string") }
                return s
            }
            guard !references.isEmpty else { throw DatasetError(file: path, location: loc, "no references to compare with") }
            let id = (obj["id"] as? String) ?? (obj["id"].map { "\($0)" } ?? "line \(line)")
            let language = (obj["language"] as? String) ?? QAPrompt.detectLanguage(references.joined(separator: "\n"))
            let item = EvalItem(id: id, origin: "\(path):\(loc)", kind: .qa, language: language,
                                question: (obj["question"] as? String) ?? "", promptIds: [], answerIds: [], references: references)
            out.append((item, prediction))
        }
        guard !out.isEmpty else { throw DatasetError(file: path, "the predictions file has no lines") }
        return out
    }
}
