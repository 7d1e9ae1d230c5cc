import Foundation
import Testing
@testable import Trainer
import EncoreTestSupport

@Suite struct GenerateCommandTests {
    @Test("--withhold-genres empties the published genres and keeps the truth; bad genre options are refused by name")
    func catalogGenreOptions() throws {
        let dir = makeTemporaryDirectory("generate-genres")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try run(["generate", "--preset", "tiny", "--output", dir, "--withhold-genres", "--threads", "2"])
        func rows(_ name: String) throws -> [[String]] {
            try String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8).split(separator: "\n").dropFirst()
                .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        }
        let tracks = try rows("tracks.tsv"), artists = try rows("artists.tsv"), truth = try rows("truth_tracks.tsv")
        #expect(tracks.count == 800 && tracks.allSatisfy { $0.count == 6 && $0[3].isEmpty })
        #expect(artists.allSatisfy { $0.count == 3 && $0[2].isEmpty })
        #expect(truth.allSatisfy { !$0[1].isEmpty })

        let both = errorMessage {
            _ = try EncoreTrain.parseAsRoot(["generate", "-o", dir, "--withhold-genres", "--genre-coverage", "0.5"])
        }
        #expect(both?.contains("--withhold-genres and --genre-coverage do not go together") == true, "\(both ?? "no error")")
        let range = errorMessage { _ = try EncoreTrain.parseAsRoot(["generate", "-o", dir, "--genre-error-rate", "1.5"]) }
        #expect(range?.contains("catalogGenreErrorRate must be in [0, 1], got 1.5") == true, "\(range ?? "no error")")
    }
}
