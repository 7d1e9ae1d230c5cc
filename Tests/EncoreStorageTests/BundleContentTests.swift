import Foundation
import Testing
@testable import EncoreCore
@testable import EncoreFactorization
@testable import EncoreStorage
import EncoreHybrid
import EncoreTestSupport

/// The content spaces of a bundle (`/audio`, `/text`, `/sequence`): round trip, old bundles, and the reader's
/// checks of ids and shapes.
@Suite struct BundleContentTests {
    private func bundle(items: Int = 6) throws -> ModelBundle { try smallBundle(items: items) }

    private func matrix(_ rows: Int, _ cols: Int, _ offset: Float) throws -> Matrix {
        try Matrix(rows: rows, cols: cols, storage: (0..<(rows * cols)).map { Float($0) * 0.5 + offset })
    }

    private func spaces() throws -> ContentSpaces {
        var s = ContentSpaces()
        s.audioEmbeddings = try ItemVectorSet(items: [0, 2, 5], vectors: try matrix(3, 4, 1))
        s.audioDescriptors = try ItemVectorSet(items: [0, 2, 5], vectors: try matrix(3, 2, -3))
        s.descriptorNames = ["tempo_bpm", "key"]
        s.text = try ItemVectorSet(items: [1, 2], vectors: try matrix(2, 5, 0))
        s.textInherited = [true, false]
        s.sequence = try ItemVectorSet(items: [0, 1, 2, 3], vectors: try matrix(4, 2, 7))
        return s
    }

    private func directory() -> String { makeTemporaryDirectory("bundle-content") }

    @Test func contentSpacesRoundTripAndOldBundlesReadWithout() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundle()
        try b.write(to: dir + "/plain.h5")
        #expect(try ModelBundle.read(from: dir + "/plain.h5").contentSpaces == nil)

        b.contentSpaces = try spaces()
        try b.write(to: dir + "/with.h5")
        let back = try ModelBundle.read(from: dir + "/with.h5")
        #expect(back == b)
        let s = try #require(back.contentSpaces)
        #expect(s.text?.vector(of: 2) == (try matrix(2, 5, 0)).row(1))
        #expect(s.text?.vector(of: 0) == nil)
        let aligned = try #require(s.sequence).aligned(itemCount: 6)
        #expect(aligned.present == [true, true, true, true, false, false])
        #expect(aligned.vectors.row(3) == (try matrix(4, 2, 7)).row(3) && aligned.vectors.row(4) == [0, 0])

        // The ids are stored as item ids, in item order.
        var file = try HDF5File.open(at: dir + "/with.h5")
        #expect(try file.readStrings(at: "/audio/ids").values == ["t0", "t2", "t5"])
        #expect(try file.readStrings(at: "/text/ids").values == ["t1", "t2"])
        #expect(try file.shape(of: "/audio/descriptors") == [3, 2])
        try file.close()

        // aligning keeps the rows of known ids, in item order, the first of a repeated id.
        let rows = try matrix(4, 2, 0)
        let set = ItemVectorSet.aligning(ids: ["t4", "nope", "t1", "t4"], rows: rows, to: b.itemIDs)
        #expect(set.items == [1, 4])
        #expect(set.vectors.row(0) == rows.row(2) && set.vectors.row(1) == rows.row(0))
    }

    @Test func coldStartModelRoundTripsUnderHybridAndOldBundlesReadWithout() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundle()
        var s = try spaces()
        s.hybrid = try ItemVectorSet(items: [0, 1, 2, 5], vectors: try matrix(4, 3, 0.25))
        s.hybridProvenance = ["learned", "learned", "blended(0.5 learned; audio+artist)", "predicted(audio)"]
        b.contentSpaces = s
        try b.write(to: dir + "/old.h5")
        #expect(try ModelBundle.read(from: dir + "/old.h5").contentSpaces?.hybridModel == nil)

        // A model fitted on the bundle's own factors (artist prior and an audio ridge over 4-d embeddings).
        let audio = try ContentSpace(name: "audio", vectors: try matrix(6, 4, 1).rowNormalized())
        let fitted = try ColdStartModel.fit(
            itemFactors: b.model.itemFactors, listeners: [9, 9, 9, 9, 9, 0], artists: [0, 0, 1, 1, 0, -1], spaces: [audio],
            options: ColdStartOptions(minListeners: 2, validationShare: 0.4, ridgeGrid: [0.1], priorListeners: 7))
        s.hybridModel = try fitted.parameters
        b.contentSpaces = s
        try b.write(to: dir + "/with.h5")
        let back = try ModelBundle.read(from: dir + "/with.h5")
        #expect(back == b)
        let p = try #require(back.contentSpaces?.hybridModel)
        #expect(p == (try fitted.parameters))
        #expect(p.priorListeners == 7 && p.minListeners == 2 && p.sourceNames == ["audio", "artist"])
        var file = try HDF5File.open(at: dir + "/with.h5")
        #expect(try file.readStrings(at: "/hybrid/model/sources").values == ["audio", "artist"])
        #expect(try file.scalarAttribute(Int64.self, "min_listeners", on: "/hybrid/model") == 2)
        let hasRidge = !p.ridges.isEmpty
        #expect(file.exists("/hybrid/model/ridges/audio/coefficients") == hasRidge)
        if hasRidge { #expect(try file.shape(of: "/hybrid/model/ridges/audio/coefficients") == [4, 3]) }
        try file.close()

        // A model of another factor count than the hybrid vectors is refused on write.
        s.hybridModel = try ColdStartParameters(
            sourceNames: ["artist"], weights: [1], mean: [0, 0], ridges: [:], minListeners: 1, priorListeners: 1)
        b.contentSpaces = s
        #expect(throws: BundleError.shapeMismatch(path: dir + "/x.h5", object: "/hybrid/model/mean", reason: "the cold-start model predicts 2 factors, the hybrid vectors have 3")) {
            try b.write(to: dir + "/x.h5")
        }
    }

    @Test func inconsistentSpacesAreRefusedOnWrite() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundle()
        var s = try spaces()
        s.descriptorNames = ["tempo_bpm"]
        b.contentSpaces = s
        #expect(throws: BundleError.shapeMismatch(path: dir + "/x.h5", object: "/audio/descriptor_names", reason: "1 names for 2 descriptor columns")) {
            try b.write(to: dir + "/x.h5")
        }
        s = try spaces()
        s.sequence = ItemVectorSet(unchecked: [0, 9], vectors: try matrix(2, 2, 0))
        b.contentSpaces = s
        #expect(throws: BundleError.invalidData(path: dir + "/x.h5", object: "/sequence/vectors", reason: "entry 1 names item 9: items must be distinct, ascending and below 6")) {
            try b.write(to: dir + "/x.h5")
        }
        #expect(throws: BundleError.self) { try ItemVectorSet(items: [2, 1], vectors: try matrix(2, 2, 0)) }
    }

    @Test func theReaderRefusesUnknownOrMisplacedIdsAndShapes() throws {
        let dir = directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var b = try bundle()
        b.contentSpaces = try spaces()
        try b.write(to: dir + "/good.h5")
        func damaged(_ name: String, _ edit: (inout HDF5File) throws -> Void) throws -> String {
            let path = dir + "/\(name).h5"
            try FileManager.default.copyItem(atPath: dir + "/good.h5", toPath: path)
            var file = try HDF5File.open(at: path, writable: true)
            try edit(&file)
            try file.close()
            return path
        }
        let unknown = try damaged("unknown") { f in
            try f.delete("/text/ids")
            try f.write(strings: ["t1", "zzz"], at: "/text/ids")
        }
        #expect(throws: BundleError.invalidData(path: unknown, object: "/text/ids", reason: "entry 1 ('zzz') is not an item of /ids/items")) {
            try ModelBundle.read(from: unknown)
        }
        let order = try damaged("order") { f in
            try f.delete("/sequence/ids")
            try f.write(strings: ["t0", "t2", "t1", "t3"], at: "/sequence/ids")
        }
        #expect(throws: BundleError.invalidData(path: order, object: "/sequence/ids", reason: "entry 2 ('t1') is repeated or out of the items' order")) {
            try ModelBundle.read(from: order)
        }
        let rows = try damaged("rows") { f in
            try f.delete("/audio/embeddings")
            try f.write(try matrix(2, 4, 0), at: "/audio/embeddings")
        }
        #expect(throws: BundleError.shapeMismatch(path: rows, object: "/audio/embeddings", reason: "shape [2, 4], expected [3, dim] (one row per id)")) {
            try ModelBundle.read(from: rows)
        }
        let missing = try damaged("missing") { f in try f.delete("/audio/ids") }
        #expect(throws: BundleError.missingObject(path: missing, object: "/audio/ids")) {
            try ModelBundle.read(from: missing)
        }
    }
}
