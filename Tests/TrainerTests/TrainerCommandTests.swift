import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer

/// Runs `encore-train` subcommands in process, the way the executable parses and runs them.
private func run(_ arguments: [String]) throws {
    var command = try EncoreTrain.parseAsRoot(arguments)
    try command.run()
}

private func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-trainer-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

@Suite(.serialized) struct TrainerCommandTests {
    @Test func generateSplitFitEvaluateRecommend() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "7"])
        #expect(FileManager.default.fileExists(atPath: "\(dir)/world/plays.tsv"))

        try run(["split", "--input", "\(dir)/world/plays.tsv", "--method", "random", "--test-fraction", "0.25",
                 "--seed", "1", "--train", "\(dir)/train.tsv", "--test", "\(dir)/test.tsv"])
        let (train, _) = try DelimitedLoader.load(path: "\(dir)/train.tsv", format: try DelimitedFormat.guess(path: "\(dir)/train.tsv"))
        let (test, _) = try DelimitedLoader.load(path: "\(dir)/test.tsv", format: try DelimitedFormat.guess(path: "\(dir)/test.tsv"))
        // No (user, item) pair on both sides.
        let trainPairs = Set(zip(train.users, train.items).map { "\(train.userIDs.id(at: $0.0))|\(train.itemIDs.id(at: $0.1))" })
        let testPairs = Set(zip(test.users, test.items).map { "\(test.userIDs.id(at: $0.0))|\(test.itemIDs.id(at: $0.1))" })
        #expect(trainPairs.isDisjoint(with: testPairs))
        #expect(!testPairs.isEmpty)

        try run(["fit", "--input", "\(dir)/train.tsv", "--output", "\(dir)/m.h5", "--factors", "8", "--iterations", "4",
                 "--regularization", "0.1", "--seed", "3", "--threads", "2", "--timings", "\(dir)/t.json"])
        let bundle = try ModelBundle.read(from: "\(dir)/m.h5")
        #expect(bundle.model.parameters.factors == 8)
        #expect(bundle.userIDs.count == train.userIDs.count)
        let timings = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/t.json"))) as? [String: Any]
        #expect((timings?["iteration_seconds"] as? [Double])?.count == 4)

        try run(["evaluate", "--bundle", "\(dir)/m.h5", "--train", "\(dir)/train.tsv", "--test", "\(dir)/test.tsv",
                 "--k", "5", "--json", "\(dir)/metrics.json"])
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/metrics.json"))) as? [String: Double]
        let precision = try #require(metrics?["precision@5"])
        #expect(precision > 0 && precision <= 1)
        // The metrics were stored in the bundle.
        let storedPrecision = try #require(try ModelBundle.read(from: "\(dir)/m.h5").metrics["precision@5"])
        #expect(abs(storedPrecision - precision) < 1e-12, "stored \(storedPrecision), printed \(precision)")

        let user = bundle.userIDs.ids[0]
        try run(["recommend", "--bundle", "\(dir)/m.h5", "--user", user, "--count", "5", "--explain"])
        #expect(throws: (any Error).self) { try run(["recommend", "--bundle", "\(dir)/m.h5", "--user", "nobody"]) }
    }

    @Test func evaluateStoresItsMetricsInANewVersionOfAPublishedUnit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "9"])
        try run(["split", "--input", "\(dir)/world/plays.tsv", "--method", "random", "--test-fraction", "0.25",
                 "--seed", "1", "--train", "\(dir)/train.tsv", "--test", "\(dir)/test.tsv"])
        try run(["fit", "--input", "\(dir)/train.tsv", "--output", "\(dir)/m.h5", "--factors", "4", "--iterations", "2"])
        let fitted = try ModelBundle.read(from: "\(dir)/m.h5")
        try Data("an index file".utf8).write(to: URL(fileURLWithPath: "\(dir)/ip.hnsw"))
        try PublishedModel.publish(bundle: fitted, indexes: ["items-ip": "\(dir)/ip.hnsw"], to: "\(dir)/unit")
        try run(["evaluate", "--bundle", "\(dir)/unit", "--train", "\(dir)/train.tsv", "--test", "\(dir)/test.tsv", "--k", "5"])
        // A published version never changes: the metrics are in version 2, with the same index file.
        let v2 = try PublishedModel.open(path: "\(dir)/unit")
        #expect(v2.version == "v-00000002" && v2.indexes.map(\.role) == ["items-ip"])
        #expect(try String(contentsOfFile: try #require(v2.presentIndexPaths["items-ip"]), encoding: .utf8) == "an index file")
        #expect(try v2.readBundle().metrics["precision@5"] != nil)
        #expect(try ModelBundle.read(from: "\(dir)/unit/v-00000001/bundle.h5").metrics["precision@5"] == nil)
    }

    @Test func evaluateCanMakeItsOwnSplitAndRefit() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", "\(dir)/world", "--seed", "11"])
        try run(["fit", "--input", "\(dir)/world/plays.tsv", "--output", "\(dir)/m.h5", "--factors", "8",
                 "--iterations", "3", "--regularization", "0.1"])
        let before = try ModelBundle.read(from: "\(dir)/m.h5")
        try run(["evaluate", "--bundle", "\(dir)/m.h5", "--input", "\(dir)/world/plays.tsv", "--split", "leave-k-out",
                 "--k", "5", "--json", "\(dir)/metrics.json"])
        let metrics = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(dir)/metrics.json"))) as? [String: Double]
        #expect((metrics?["users"] ?? 0) > 0)
        // A refit on a split is not the bundle's model: the bundle is left as it was.
        #expect(try ModelBundle.read(from: "\(dir)/m.h5").metrics == before.metrics)
        #expect(throws: (any Error).self) {
            try run(["evaluate", "--bundle", "\(dir)/m.h5", "--input", "\(dir)/world/plays.tsv", "--split", "temporal"])
        }
    }

    @Test func malformedInputNamesFileLineAndField() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = "\(dir)/bad.tsv"
        try "user\titem\tweight\nu1\ti1\t3\nu2\ti2\tlots\n".write(toFile: path, atomically: true, encoding: .utf8)
        do {
            try run(["fit", "--input", path, "--output", "\(dir)/m.h5", "--factors", "2", "--iterations", "1"])
            Issue.record("a malformed weight was accepted")
        } catch {
            let message = "\(error)"
            #expect(message.contains("bad.tsv:3"), "\(message)")
            #expect(message.contains("weight"), "\(message)")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.h5"))
        // With --skip-bad-rows the good row is used.
        try run(["fit", "--input", path, "--output", "\(dir)/m.h5", "--factors", "2", "--iterations", "1", "--skip-bad-rows"])
        #expect(try ModelBundle.read(from: "\(dir)/m.h5").userIDs.ids == ["u1"])
    }

    @Test func argumentsAreValidated() {
        #expect(throws: (any Error).self) { try EncoreTrain.parseAsRoot(["fit", "--input", "x", "--output", "y", "--solver", "qr"]) }
        #expect(throws: (any Error).self) { try EncoreTrain.parseAsRoot(["evaluate", "--bundle", "b"]) }
        #expect(throws: (any Error).self) { try run(["fit", "--input", "/nonexistent/plays.tsv", "--output", "/tmp/x.h5"]) }
        #expect(throws: (any Error).self) {
            try run(["fit", "--input", "/nonexistent.tsv", "--output", "/tmp/x.h5", "--factors", "0"])
        }
    }

    @Test(arguments: ["generate", "split", "fit", "evaluate", "recommend"])
    func everySubcommandHasHelp(name: String) {
        let help = EncoreTrain.helpMessage(for: EncoreTrain.self, includeHidden: false, columns: 100)
        #expect(help.contains(name))
        let sub = EncoreTrain.configuration.subcommands.first { $0.configuration.commandName == name }
        #expect(sub != nil)
        if let sub { #expect(!sub.helpMessage().isEmpty && sub.helpMessage().contains("USAGE")) }
    }
}
