import Foundation
import XCTest
@testable import LangTune

/// Bad training files: each gives a `DatasetError` naming the file, the place and the problem.
final class DataPipelineInputErrorTests: XCTestCase {
    func testInvalidJSONLineIsNamed() throws {
        let dir = try TempDir()
        let ok = #"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#
        let path = try dir.write("bad.jsonl", ok + "\n" + ok + "\n" + #"{"messages": [{"role": "user", "content": "a"}"# + "\n" + ok + "\n")
        let message = datasetErrorMessage { _ = try DatasetReader.read(path) }
        XCTAssertTrue(message.hasPrefix("\(path):line 3: invalid JSON ("), message)
    }

    func testMissingField() throws {
        let dir = try TempDir()
        let path = try dir.write("alpaca.json", #"[{"instruction": "a", "output": "b"}, {"instruction": "c", "input": "d"}]"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(path) }, "\(path):item 1: missing field \"output\"")
        let squad = try dir.write("squad.json", #"{"data": [{"paragraphs": [{"qas": []}]}]}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(squad) }, "\(squad):data[0].paragraphs[0]: missing field \"context\"")
    }

    func testEmptyDataset() throws {
        let dir = try TempDir()
        let path = try dir.write("empty.jsonl", "\n  \n")
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(path, format: .messages) },
                       "\(path): the dataset has no examples (format messages)")
        let squad = try dir.write("empty.json", #"{"data": []}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(squad, format: .squad) },
                       "\(squad): the dataset has no examples (format squad)")
        let smol = try SmolLM2Text.load()
        XCTAssertEqual(datasetErrorMessage { _ = try smol.builder().build([]) }, "training data: the dataset has no examples")
    }

    func testWrongTypes() throws {
        let dir = try TempDir()
        let chat = try dir.write("types.jsonl", #"{"messages": [{"role": "user", "content": 42}]}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(chat) }, "\(chat):line 1 messages[0]: field \"content\" is not a string")
        let notArray = try dir.write("types2.jsonl", #"{"messages": "hello"}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(notArray, format: .messages) },
                       "\(notArray):line 1: missing \"messages\" array")
        let squad = try dir.write("types.json", #"{"data": [{"paragraphs": [{"context": ["x"], "qas": []}]}]}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(squad) }, "\(squad):data[0].paragraphs[0]: field \"context\" is not a string")
        let noAnswer = try dir.write("noanswer.json",
                                     #"{"data": [{"paragraphs": [{"context": "x", "qas": [{"id": "q1", "question": "?", "answers": [{"text": 5}]}]}]}]}"#)
        XCTAssertEqual(datasetErrorMessage { _ = try DatasetReader.read(noAnswer) },
                       "\(noAnswer):data[0].paragraphs[0].qas[0]: question q1 has no answer text")
    }

    func testNoUsableExampleNamesTheFileAndWhy() throws {
        let smol = try SmolLM2Text.load()
        let dir = try TempDir()
        let path = try dir.write("tiny.txt", "x\n\ny\n")
        let message = datasetErrorMessage { _ = try smol.builder().build(try DatasetReader.read(path)) }
        XCTAssertEqual(message, "\(path): no usable example: all 2 were dropped (2 with no answer tokens); first: \(path):line 1, \(path):line 3")
        let tooSmall = datasetErrorMessage { _ = try smol.builder(TrainingDataOptions(maxSeqLen: 1)).build(try DatasetReader.read(path)) }
        XCTAssertEqual(tooSmall, "\(path): the maximum sequence length must be at least 2 tokens (got 1)")
    }
}
