import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreData
@testable import EncoreFactorization
@testable import EncoreIndex
@testable import EncorePlaylists
@testable import EncoreSynth

/// A brute-force ``VectorIndex`` for the playlist tests (independent of the library's indexes): every allowed vector
/// is scored, the `k` closest returned, ties by id.
struct BruteForceIndex: VectorIndex {
    let dimension: Int
    let metric: VectorMetric
    let vectors: Matrix

    init(vectors: Matrix, metric: VectorMetric) {
        self.dimension = vectors.cols
        self.metric = metric
        self.vectors = metric == .cosine ? vectors.rowNormalized() : vectors
    }

    var count: Int { vectors.rows }

    func search(_ query: [Float], k: Int, filter: SearchFilter?) throws(IndexError) -> [Neighbor] {
        guard query.count == dimension else { throw .dimensionMismatch(expected: dimension, got: query.count) }
        var q = query
        if metric == .cosine {
            let n = q.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if n > 0 { q = q.map { $0 / n } }
        }
        var out: [Neighbor] = []
        for r in 0..<vectors.rows where filter?.allows(Int32(r)) ?? true {
            var dot: Float = 0, l2: Float = 0
            for c in 0..<dimension {
                let x = vectors[r, c]
                dot += x * q[c]
                l2 += (x - q[c]) * (x - q[c])
            }
            let d: Float
            switch metric {
            case .cosine: d = 1 - dot
            case .l2: d = l2
            case .innerProduct: d = -dot
            }
            out.append(Neighbor(id: Int32(r), distance: d))
        }
        out.sort { $0.distance != $1.distance ? $0.distance < $1.distance : $0.id < $1.id }
        return Array(out.prefix(k))
    }
}

struct FixtureError: Error, Sendable, CustomStringConvertible {
    let description: String
}

/// The users x items matrix of listened plays in `histories` (the training matrix of the playlist tests).
func listenedMatrix(_ histories: ListeningHistories) -> CSRMatrix {
    var r: [Int32] = [], c: [Int32] = [], v: [Float] = []
    for u in 0..<Int32(histories.userCount) {
        for (i, p) in zip(histories.items(of: u), histories.plays(of: u)) where p > 0 {
            r.append(u); c.append(i); v.append(p)
        }
    }
    return (try? CSRMatrix(rows: histories.userCount, cols: histories.itemCount, rowIndices: r, colIndices: c, values: v))
        ?? .empty(rows: histories.userCount, cols: histories.itemCount)
}

/// One tiny synthetic world, its histories as of the Monday after the log, an ALS model fitted on every listened play,
/// and a catalog that flags every 41st track: shared by the playlist tests (built once, read-only).
struct PlaylistFixture: Sendable {
    let world: SyntheticWorld
    let catalog: TrackCatalog
    let histories: ListeningHistories
    let weighted: CSRMatrix
    let model: ImplicitALS
    let environment: PlaylistEnvironment
    let week: PlaylistDate

    static let shared: Result<PlaylistFixture, FixtureError> = {
        do { return .success(try PlaylistFixture()) } catch { return .failure(FixtureError(description: "\(error)")) }
    }()

    static func get() throws -> PlaylistFixture { try shared.get() }

    init() throws {
        world = try SyntheticWorld.generate(.tiny)
        let c = world.catalog
        var flagged = IDBitset(capacity: c.trackCount)
        for t in stride(from: 0, to: c.trackCount, by: 41) { flagged.insert(Int32(t)) }
        let w = world
        catalog = try TrackCatalog(
            itemCount: c.trackCount, trackArtist: c.trackArtist, trackAlbum: c.trackAlbum,
            trackGenre: world.catalogLabels.trackGenre,
            trackRelease: c.trackRelease, trackDurationMs: c.trackDurationMs, flagged: flagged,
            artistIDs: IDMap(ids: (0..<Int32(c.artistCount)).map { w.ids.artist($0) }), artistNames: c.artistNames,
            albumCount: c.albumCount, genreNames: world.config.genres.map(\.name))
        histories = try ListeningHistories(world: world)
        week = PlaylistDate.mondayAfter(world.config.endTimestamp)
        weighted = ConfidenceWeighting.bm25Default.apply(toUserItems: listenedMatrix(histories))
        var m = ImplicitALS(parameters: ALSParameters(factors: 24, regularization: 0.1, iterations: 12, seed: 3, threads: 2))
        try m.fit(weighted)
        model = m
        // The item space scans exactly (BLAS); the user-vector source searches a brute-force index (the index path).
        let space = try ItemSpace.collaborative(model, userItems: weighted)
        environment = try PlaylistEnvironment(catalog: catalog, space: space, model: model)
    }

    /// The standard Discover Weekly configuration, the user-vector source searching an inner-product brute-force
    /// index.
    func discoverWeeklyConfiguration() throws -> DiscoverWeekly.Configuration {
        try .standard(histories: histories, model: model, catalog: catalog,
                      itemIndex: BruteForceIndex(vectors: model.itemFactors, metric: .innerProduct))
    }

    /// Users with at least `minimum` familiar tracks, ascending.
    func users(withFamiliar minimum: Int) throws -> [Int32] {
        try histories.activeUsers.filter { u in
            let h = try histories.history(of: u)
            return (0..<h.count).filter { h.isFamiliar(at: $0) }.count >= minimum
        }
    }
}

@Suite("Playlist fixture and shared pieces")
struct PlaylistFixtureTests {
    @Test func fixtureBuilds() throws {
        let f = try PlaylistFixture.get()
        #expect(f.histories.userCount == f.world.users.count)
        #expect(f.model.itemCount == f.catalog.itemCount)
        #expect(f.week.isMonday)
        #expect(f.week.description == "2026-11-16")
    }

    @Test func datesAndWeeks() throws {
        let d = try PlaylistDate("2026-11-16")
        #expect(d.isMonday)
        #expect(d.weekday == 0)
        #expect(d.description == "2026-11-16")
        #expect(try PlaylistDate.week("2026-11-16") == d)
        #expect(throws: PlaylistError.self) { try PlaylistDate.week("2026-11-17") }
        #expect(throws: PlaylistError.self) { try PlaylistDate("2026-13-01") }
        #expect(throws: PlaylistError.self) { try PlaylistDate("16/11/2026") }
        // Sunday 23:59:59 -> the next day; a Monday -> a week later.
        #expect(PlaylistDate.mondayAfter(d.timestamp - 1) == d)
        #expect(PlaylistDate.mondayAfter(d.timestamp) == d.adding(days: 7))
        #expect(PlaylistDate.mondayAfter(d.timestamp + 3 * 86_400) == d.adding(days: 7))
        #expect(PlaylistDate(containing: d.timestamp + 86_399) == d)
        #expect(d.adding(days: 3).monday == d)
        // Weekday of a known date: 1970-01-01 was a Thursday.
        #expect(PlaylistDate(dayNumber: 0).weekday == 3)
    }

    @Test func stableSeedsAreFNV1a() {
        // FNV-1a 64 test vectors.
        #expect(StableSeed.fnv1a64(Array("".utf8)) == 0xCBF2_9CE4_8422_2325)
        #expect(StableSeed.fnv1a64(Array("a".utf8)) == 0xAF63_DC4C_8601_EC8C)
        #expect(StableSeed.fnv1a64(Array("foobar".utf8)) == 0x8594_4171_F739_67E8)
        #expect(StableSeed.make(["ab", "c"]) != StableSeed.make(["a", "bc"]))
        #expect(StableSeed.make(["u1", "2026-11-16"]) == StableSeed.make(["u1", "2026-11-16"]))
        #expect(StableSeed.make(["u1", "2026-11-16"], salt: 1) != StableSeed.make(["u1", "2026-11-16"]))
    }
}
