import ArgumentParser
import Foundation
import Testing
@testable import RecCore
@testable import Trainer
@testable import EncoreWeekly
import EncoreTestSupport

@Suite(.serialized) struct TrainerCommandTests {
    @Test func generateSplitFitEvaluateRecommend() throws {
        let dir = makeTemporaryDirectory("trainer")
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
        try expectExplainedRecommendations(bundle: "\(dir)/m.h5", user: user, train: train)
        let unknown = errorMessage { try run(["recommend", "--bundle", "\(dir)/m.h5", "--user", "nobody"]) }
        #expect(unknown?.contains("user 'nobody' is not in \(dir)/m.h5") == true, "\(unknown ?? "no error")")
    }

    /// `recommend --explain` prints the model's top tracks for `user`, each with the played tracks that explain it:
    /// the first three contributions of the model's `explain`, every one a track the user played in `train`.
    func expectExplainedRecommendations(bundle path: String, user: String, train: Interactions) throws {
        let bundle = try ModelBundle.read(from: path)
        let u = try #require(bundle.userIDs.index(of: user))
        let history = ImplicitALS.history(of: u, in: bundle.userItems)
        let played = Set((0..<train.count).filter { train.userIDs.id(at: train.users[$0]) == user }
            .map { train.itemIDs.id(at: train.items[$0]) })
        #expect(Set(history.items.map { bundle.itemIDs.id(at: $0) }) == played)
        let ranked = try bundle.model.recommend(user: u, k: 5, userItems: bundle.userItems)

        let command = try #require(try EncoreTrain.parseAsRoot(
            ["recommend", "--bundle", path, "--user", user, "--count", "5", "--explain"]) as? RecommendCommand)
        let lines = try command.output().split(separator: "\n").map(String.init)
        #expect(lines.first == "Recommendations for \(user) (\(played.count) tracks played):")
        #expect(lines.count == 6, "\(lines)")
        for (rank, (line, item)) in zip(lines.dropFirst(), ranked.items).enumerated() {
            let explanation = try bundle.model.explain(item: item, items: history.items, values: history.values)
            let top = explanation.contributions.prefix(3)
            #expect(!top.isEmpty)
            let because = top.map { String(format: "%@ %.0f%%", bundle.itemIDs.id(at: $0.item), $0.share * 100) }
            #expect(line == String(format: "%3d  %@  %.4f", rank + 1, bundle.itemIDs.id(at: item), ranked.scores[rank])
                        + "  because you played " + because.joined(separator: ", "))
            for c in top { #expect(played.contains(bundle.itemIDs.id(at: c.item)), "\(line)") }
        }
        // The JSON output names the same tracks.
        let json = try #require(try EncoreTrain.parseAsRoot(
            ["recommend", "--bundle", path, "--user", user, "--count", "5", "--explain", "--json"]) as? RecommendCommand)
        let list = try JSONDecoder().decode(RecommendationList.self, from: Data(try json.output().utf8))
        #expect(list.recommendations.map(\.item) == ranked.items.map { bundle.itemIDs.id(at: $0) })
        for row in list.recommendations {
            #expect(row.because?.isEmpty == false && row.because!.allSatisfy { played.contains($0.item) })
        }
    }

    @Test func evaluateStoresItsMetricsInANewVersionOfAPublishedUnit() throws {
        let dir = makeTemporaryDirectory("trainer")
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
        let dir = makeTemporaryDirectory("trainer")
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
        let noCutoff = errorMessage {
            try run(["evaluate", "--bundle", "\(dir)/m.h5", "--input", "\(dir)/world/plays.tsv", "--split", "temporal"])
        }
        #expect(noCutoff?.contains("--split temporal needs --cutoff") == true, "\(noCutoff ?? "no error")")
    }

    /// The ALS lists `evaluate` scores: the model's own, by user; an error of the model is reported, not scored as
    /// empty lists.
    @Test func evaluationRecommendationsAreTheModelsAndItsErrorsAreReported() throws {
        let model = try ImplicitALS(
            parameters: ALSParameters(factors: 2), userFactors: Matrix.random(rows: 2, cols: 2, scale: 1, seed: 1),
            itemFactors: Matrix.random(rows: 3, cols: 2, scale: 1, seed: 2))
        let exclude = try CSRMatrix(rows: 2, cols: 3, rowIndices: [0], colIndices: [2], values: [1])
        let test = try CSRMatrix(rows: 2, cols: 3, rowIndices: [0], colIndices: [1], values: [1])
        let lists = try EvaluateCommand.recommendations(model, test: test, exclude: exclude, k: 2)
        #expect(lists.count == 2 && lists[1].isEmpty)
        #expect(try lists[0] == model.recommend(user: 0, k: 2, userItems: exclude).items && !lists[0].contains(2))
        // A test user the model does not have.
        let wider = try CSRMatrix(rows: 3, cols: 3, rowIndices: [0, 2], colIndices: [1, 0], values: [1, 1])
        let message = errorMessage {
            _ = try EvaluateCommand.recommendations(model, test: wider, exclude: .empty(rows: 3, cols: 3), k: 2)
        }
        #expect(message?.contains("cannot recommend for the test users") == true, "\(message ?? "no error")")
        #expect(message?.contains("user 2 of 2") == true, "\(message ?? "no error")")
    }

    @Test func malformedInputNamesFileLineAndField() throws {
        let dir = makeTemporaryDirectory("trainer")
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

    @Test func argumentsAreValidated() throws {
        let solver = errorMessage { _ = try EncoreTrain.parseAsRoot(["fit", "--input", "x", "--output", "y", "--solver", "qr"]) }
        #expect(solver?.contains("--solver") == true && solver?.contains("qr") == true, "\(solver ?? "no error")")
        let noData = errorMessage { _ = try EncoreTrain.parseAsRoot(["evaluate", "--bundle", "b"]) }
        #expect(noData?.contains("give either --train and --test, or --input and --split") == true, "\(noData ?? "no error")")
        let missing = errorMessage { try run(["fit", "--input", "/nonexistent/plays.tsv", "--output", "/tmp/x.h5"]) }
        #expect(missing?.contains("/nonexistent/plays.tsv: cannot read") == true, "\(missing ?? "no error")")

        // --factors 0 on a real, readable input: refused for the factors, naming the flag, and nothing is written.
        let dir = makeTemporaryDirectory("trainer")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "user\titem\tweight\nu1\ti1\t3\nu2\ti2\t1\n".write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        let factors = errorMessage { try run(["fit", "--input", "\(dir)/log.tsv", "--output", "\(dir)/m.h5", "--factors", "0"]) }
        #expect(factors?.contains("--factors") == true, "\(factors ?? "no error")")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.h5"))
        let weekly = errorMessage { try run(["weekly", "--events", "\(dir)/log.tsv", "--output", "\(dir)/w.h5", "--iterations", "-1"]) }
        #expect(weekly?.contains("--iterations") == true, "\(weekly ?? "no error")")
        for input in ["fit --input", "weekly --events"] {
            let words = input.split(separator: " ").map(String.init)
            let floor = errorMessage {
                try run(words + ["\(dir)/log.tsv", "--output", "\(dir)/f.h5", "--confidence-floor=-0.5"])
            }
            #expect(floor?.contains("--confidence-floor must be >= 0, got -0.5") == true, "\(floor ?? "no error")")
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
