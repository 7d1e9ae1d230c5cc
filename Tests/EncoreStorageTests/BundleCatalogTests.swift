import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization
@testable import EncorePlaylists
@testable import EncoreStorage
import EncoreTestSupport


@Suite struct BundleCatalogTests {
    private func bundle(items: Int = 6) throws -> ModelBundle { try smallBundle(items: items) }

    private func catalog(items: Int = 6) throws -> TrackCatalog {
        try TrackCatalog(
            itemCount: items, trackArtist: [0, 0, 1, -1, 2, 1], trackAlbum: [0, 0, 1, -1, 2, 3],
            trackGenre: [0, 1, 1, -1, 0, 1], trackRelease: [1_600_000_000, 1_500_000_000, TrackCatalog.unknownTime, 0, 7, 8],
            trackDurationMs: [180_000, 0, 200_000, 1, 2, 3], flagged: IDBitset([2, 5]),
            artistIDs: try IDMap(ids: ["a1", "a2", "Sigur Rós"]), artistNames: ["One", "Two", "Sigur Rós"], albumCount: 4,
            genreNames: ["rock", "jazz"])
    }

    @Test func catalogRoundTripsAndOldBundlesReadWithout() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("encore-bundle-catalog-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundle()
        try b.write(to: dir + "/plain.h5")
        #expect(try ModelBundle.read(from: dir + "/plain.h5").catalog == nil)

        b.catalog = try catalog()
        try b.write(to: dir + "/with.h5")
        let back = try ModelBundle.read(from: dir + "/with.h5")
        #expect(back == b)
        let c = try #require(back.catalog)
        #expect(c.sameContents(as: try catalog()))
        #expect(c.flagged.contains(2) && c.flagged.contains(5) && !c.flagged.contains(0))
        #expect(c.artist(of: 4) == 2 && c.name(ofArtist: 2) == "Sigur Rós" && c.artistIDs.index(of: "a2") == 1)
        #expect(c.release(of: 2) == TrackCatalog.unknownTime)
        #expect(Array(c.tracks(ofArtist: 0)) == [0, 1])
        var other = b
        other.catalog = try TrackCatalog(itemCount: 6)
        #expect(other != b)

        // A catalog of another item count is refused on write.
        var wrong = b
        wrong.catalog = try catalog(items: 6)
        wrong.catalog = try TrackCatalog(itemCount: 5)
        #expect(throws: BundleError.self) { try wrong.write(to: dir + "/wrong.h5") }

        // h5py reads the catalog (when h5py is importable; CI requires it).
        if let missing = TestPython.h5pyMissing {
            if TestPython.h5pyRequired { Issue.record(Comment(rawValue: missing)) }
        } else {
            let script = """
                import h5py, sys
                f = h5py.File(sys.argv[1], "r")
                c = f["/catalog"]
                names = [s.decode() if isinstance(s, bytes) else s for s in c["artist_names"][:]]
                print(list(int(v) for v in c["track_artist"][:]), names, int(c.attrs["album_count"]),
                      list(int(v) for v in c["flagged"][:]), int(c["track_release"][2]))
                """
            let result = try TestPython.run(["-c", script, dir + "/with.h5"])
            #expect(result.status == 0)
            #expect(result.output == "[0, 0, 1, -1, 2, 1] ['One', 'Two', 'Sigur Rós'] 4 [0, 0, 1, 0, 0, 1] -9223372036854775808\n")
        }

        // A damaged catalog (artist index out of range) is refused on read, naming /catalog.
        var file = try HDF5File.open(at: dir + "/with.h5", writable: true)
        try file.delete(CatalogLayout.trackArtist)
        try file.write([Int32](arrayLiteral: 0, 0, 9, -1, 2, 1), shape: [6], at: CatalogLayout.trackArtist)
        try file.close()
        #expect {
            _ = try ModelBundle.read(from: dir + "/with.h5")
        } throws: { error in
            guard case let .invalidData(_, object, reason)? = error as? BundleError else { return false }
            return object == "/catalog" && reason.contains("artist 9")
        }
    }
}
