import Foundation
import Testing
@testable import RecCore

@Suite("Playlist experiments", .enabled(if: ProcessInfo.processInfo.environment["ENCORE_PLAYLIST_EXPERIMENT"] != nil))
struct PlaylistExperimentTests {
    @Test(arguments: [UInt64(1234), 31337, 2024])
    func tuneDiscoverWeekly(seed: UInt64) throws {
        let w = try SyntheticWorld.generate(SyntheticWorldConfig(seed: seed, users: 1_200, tracks: 3_000, artists: 360))
        var log = try w.playInteractions()
        log.weights = w.plays.msPlayed.map { Float($0) }
        let set = try PlaylistEvaluation.weeklyTestSet(plays: log, weighting: .encorePlays, feedback: FeedbackLog(world: w))
        var model = ImplicitALS(parameters: ALSParameters(factors: 32, regularization: 0.1, iterations: 12, seed: 1, threads: 2))
        try model.fit(ConfidenceWeighting.bm25Default.apply(toUserItems: set.train))
        let env = try PlaylistEnvironment(
            catalog: TrackCatalog(world: w), space: ItemSpace.collaborative(model, userItems: set.train), model: model)
        func run(_ name: String, _ c: DiscoverWeekly.Configuration) throws {
            let b = try DiscoverWeekly(environment: env, configuration: c, week: set.week)
            let r = try PlaylistEvaluation.discoverWeeklyHitRates(builder: b, histories: set.histories, test: set.test, users: set.users)
            print(String(format: "%-40@ DW %.4f (%.3f)  POP %.4f  ALS %.4f (%.3f)", name as NSString, r.discoverWeekly.share,
                         r.discoverWeekly.usersWithHit, r.popularity.share, r.alsTop.share, r.alsTop.usersWithHit))
        }
        let std = try DiscoverWeekly.Configuration.standard(histories: set.histories, model: model)
        for (wt, lim) in [(Float(3), 100), (4, 100), (3, 200), (6, 200)] {
            var c = std
            c.sources.append(DiscoverWeekly.Source(try GenreAffinityTracks(histories: set.histories, catalog: TrackCatalog(world: w)), weight: wt, limit: lim))
            try run("genre \(wt) limit \(lim) seed \(seed)", c)
        }
    }
}

struct ExposureALS: CandidateSource {
    let name = "exposure-als"
    let release: [Int64]
    let gamma: Float
    init(catalog: TrackCatalog, gamma: Float) { release = catalog.trackRelease; self.gamma = gamma }
    func candidates(for context: PlaylistContext, limit: Int) throws(PlaylistError) -> [Candidate] {
        guard let v = context.userVector else { return [] }
        var top = TopK(k: limit)
        let span: Float = 84
        for i in 0..<release.count where context.allows(Int32(i)) {
            let s = context.environment.score(Int32(i), vector: v)
            guard s > 0 else { continue }
            let age = min(span, Float(context.referenceTime - release[i]) / 86400)
            top.push(Int32(i), s * Float(Foundation.pow(Double((span + 7) / (age + 7)), Double(gamma))))
        }
        top.finish()
        return zip(top.indices, top.scores).map { Candidate(item: $0, score: $1, source: name) }
    }
}
