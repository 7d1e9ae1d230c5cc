import ArgumentParser
import Foundation
import RecCore

/// `encore-train recommend`: one user's recommendations from a bundle, with explanations.
struct RecommendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recommend",
        abstract: "Print a user's top tracks from a model bundle, with scores and the played tracks that explain them.")

    @Option(help: "The model bundle.")
    var bundle: String

    @Option(help: "The user's external id.")
    var user: String

    @Option(help: "How many tracks.")
    var count: Int = 10

    @Flag(help: "Show, for each track, the played tracks that contribute most to its score.")
    var explain = false

    @Flag(help: "Also recommend tracks the user has already played.")
    var includePlayed = false

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive") }
    }

    func run() throws { print(try output(), terminator: "") }

    /// What `run` prints: a table (or JSON) of the user's top tracks, with the played tracks that explain them.
    func output() throws -> String {
        try BundleCheck.validate(bundle)
        let b = try PublishedModel.readBundle(at: bundle)
        guard let u = b.userIDs.index(of: user) else {
            throw TrainerError("user '\(user)' is not in \(bundle) (\(b.userIDs.count) users; e.g. '\(b.userIDs.ids.first ?? "")')")
        }
        let ranked = try b.model.recommend(user: u, k: count, userItems: b.userItems, filterAlreadyLiked: !includePlayed)
        let history = ImplicitALS.history(of: u, in: b.userItems)
        var rows: [RecommendationRow] = []
        for (rank, (item, score)) in zip(ranked.items, ranked.scores).enumerated() {
            var because: [RecommendationRow.Because] = []
            if explain {
                let e = try b.model.explain(item: item, items: history.items, values: history.values)
                because = e.contributions.prefix(3).map { .init(item: b.itemIDs.id(at: $0.item), share: $0.share) }
            }
            rows.append(.init(rank: rank + 1, item: b.itemIDs.id(at: item), score: score, because: explain ? because : nil))
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = try encoder.encode(RecommendationList(user: user, recommendations: rows))
            return String(decoding: data, as: UTF8.self) + "\n"
        }
        var text = "Recommendations for \(user) (\(history.items.count) tracks played):\n"
        for row in rows {
            var line = String(format: "%3d  %@  %.4f", row.rank, row.item, row.score)
            if let because = row.because, !because.isEmpty {
                let parts = because.map { String(format: "%@ %.0f%%", $0.item, $0.share * 100) }
                line += "  because you played " + parts.joined(separator: ", ")
            }
            text += line + "\n"
        }
        return text
    }
}

/// One recommended track as printed by `recommend`.
struct RecommendationRow: Codable {
    struct Because: Codable {
        var item: String
        var share: Float
    }
    var rank: Int
    var item: String
    var score: Float
    var because: [Because]?
}

/// The JSON document `recommend --json` prints.
struct RecommendationList: Codable {
    var user: String
    var recommendations: [RecommendationRow]
}
