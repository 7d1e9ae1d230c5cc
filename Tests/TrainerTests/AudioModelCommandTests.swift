import ArgumentParser
import Foundation
import Testing
@testable import EncoreStorage
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

/// `encore-train train-audio` and `embed` end to end on a small features file written in the layout of
/// `analyze --log-mel`, with a small network; and the command-line refusals.
@Suite(.serialized) struct AudioModelCommandTests {
    /// Eight tracks of 8 bands, each a band profile with a beat, as `/tracks/ids`, `/logmel/data`, `/logmel/offsets`.
    static func writeFeatures(to path: String) throws {
        var rng = SplitMix64(seed: 4)
        var data: [Float] = [], offsets: [Int64] = [0]
        for t in 0..<8 {
            let frames = 50 + t * 3
            let profile = (0..<8).map { _ in Float(rng.nextGaussian() * 10) - 40 }
            for f in 0..<frames {
                for b in 0..<8 { data.append(profile[b] + (f % (3 + t % 3) == 0 ? 6 : 0) + Float(rng.nextGaussian())) }
            }
            offsets.append(offsets.last! + Int64(frames))
        }
        var file = try HDF5File.create(at: path, overwrite: true)
        try file.write(strings: (0..<8).map { "t\($0)" }, at: "/tracks/ids")
        try file.write(data, shape: [data.count / 8, 8], at: "/logmel/data")
        try file.write(offsets, shape: [9], at: "/logmel/offsets")
        try file.close()
    }

    static let small = ["--channels", "8,8", "--pools", "2,1", "--hidden", "16", "--dim", "6", "--crop-seconds", "0.5",
                        "--batch", "4", "--threads", "2", "--validation-share", "0.25"]

    @Test("train-audio (both, with a fitted bundle) then embed: every track gets a unit embedding and a CF prediction")
    func trainAndEmbed() throws {
        let dir = makeTemporaryDirectory("audio-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeFeatures(to: "\(dir)/f.h5")
        // Plays of t0..t5 only: t6 and t7 have no CF vector and train only the contrastive head.
        var plays = "user\titem\tweight\ttimestamp\n"
        for u in 0..<12 { for i in 0..<6 where (u + i) % 3 != 0 { plays += "u\(u)\tt\(i)\t\(1 + (u * i) % 4)\t\(1_700_000_000 + u * 100 + i)\n" } }
        try plays.write(toFile: "\(dir)/listens.tsv", atomically: true, encoding: .utf8)
        var fit = try EncoreTrain.parseAsRoot(["fit", "--input", "\(dir)/listens.tsv", "--output", "\(dir)/b.h5",
                                               "--factors", "4", "--iterations", "3"])
        try fit.run()
        var train = try EncoreTrain.parseAsRoot(["train-audio", "--features", "\(dir)/f.h5", "--output", "\(dir)/m.h5",
                                                 "--objective", "both", "--bundle", "\(dir)/b.h5", "--epochs", "2"]
                                                + Self.small)
        try train.run()
        let model = try AudioModelFiles.read(from: "\(dir)/m.h5")
        #expect(model.configuration.cfFactors == 4 && model.configuration.dim == 6)
        #expect(model.history.count == 2)
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.h5.checkpoint.h5"))
        var embed = try EncoreTrain.parseAsRoot(["embed", "--model", "\(dir)/m.h5", "--features", "\(dir)/f.h5",
                                                 "--output", "\(dir)/e.h5"])
        try embed.run()
        let file = try HDF5File.open(at: "\(dir)/e.h5")
        #expect(try file.readStrings(at: "/tracks/ids").values == (0..<8).map { "t\($0)" })
        let e = try file.read(Float.self, at: "/embeddings")
        #expect(e.shape == [8, 6])
        for t in 0..<8 {
            let sq = (0..<6).reduce(0.0) { $0 + Double(e.values[t * 6 + $1]) * Double(e.values[t * 6 + $1]) }
            #expect(abs(sq - 1) < 1e-5)
        }
        #expect(try file.read(Float.self, at: "/cf_predicted").shape == [8, 4])
    }

    @Test("CF targets match features ids by track id, else by file name without folder and extension")
    func cfTargetsMatchFileNames() throws {
        #expect(AudioModelFiles.trackID(ofFeatureID: "audio/t0000042.flac") == "t0000042")
        #expect(AudioModelFiles.trackID(ofFeatureID: "a.b/c.d.ogg") == "c.d")
        #expect(AudioModelFiles.trackID(ofFeatureID: ".hidden") == ".hidden")
        #expect(AudioModelFiles.trackID(ofFeatureID: "plain") == "plain")
        let dir = makeTemporaryDirectory("audio-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var plays = "user\titem\tweight\ttimestamp\n"
        for u in 0..<6 { for i in 0..<3 { plays += "u\(u)\tt\(i)\t\(1 + (u + i) % 3)\t\(1_700_000_000 + u * 10 + i)\n" } }
        try plays.write(toFile: "\(dir)/listens.tsv", atomically: true, encoding: .utf8)
        var fit = try EncoreTrain.parseAsRoot(["fit", "--input", "\(dir)/listens.tsv", "--output", "\(dir)/b.h5",
                                               "--factors", "3", "--iterations", "2"])
        try fit.run()
        let ids = ["audio/t0.flac", "t1", "deep/er/t2.ogg", "t9.flac"]
        let set = LogMelSet(ids: ids, data: [Float](repeating: 0, count: 8 * 2), offsets: [0, 2, 4, 6, 8], bands: 2, framesPerSecond: 43)
        let targets = try AudioModelFiles.cfTargets(bundlePath: "\(dir)/b.h5", for: set)
        #expect(targets.hasTarget == [true, true, true, false])
        let bundle = try ModelBundle.read(from: "\(dir)/b.h5")
        for (k, track) in ["t0", "t1", "t2"].enumerated() {
            let row = bundle.model.itemFactors.row(Int(try #require(bundle.itemIDs.index(of: track))))
            let norm = row.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
            let got = Array(targets.vectors[(k * 3)..<(k * 3 + 3)])
            #expect(zip(got, row).allSatisfy { abs(Double($0) - Double($1) / norm) < 1e-6 }, "\(track): \(got) vs \(row)")
        }
    }

    @Test("train-audio refuses cf without --bundle and a features file without log-mel, naming them")
    func refusals() throws {
        let dir = makeTemporaryDirectory("audio-cmd")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeFeatures(to: "\(dir)/f.h5")
        var cf = try EncoreTrain.parseAsRoot(["train-audio", "--features", "\(dir)/f.h5", "--output", "\(dir)/m.h5",
                                              "--objective", "cf"] + Self.small)
        #expect(throws: AudioModelError.invalidParameter(name: "bundle", reason: "--objective cf needs --bundle with the CF item vectors")) {
            try cf.run()
        }
        var ids = try HDF5File.create(at: "\(dir)/ids.h5")
        try ids.write(strings: ["a"], at: "/tracks/ids")
        try ids.close()
        var noLogMel = try EncoreTrain.parseAsRoot(["train-audio", "--features", "\(dir)/ids.h5", "--output", "\(dir)/m.h5"])
        do {
            try noLogMel.run()
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "\(dir)/ids.h5: the file has no log-mel features (/logmel/data and /logmel/offsets); write them with `encore-train analyze --log-mel`")
        }
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/m.h5"))
        #expect(throws: (any Error).self) {
            _ = try EncoreTrain.parseAsRoot(["train-audio", "--features", "f", "--output", "o", "--objective", "triplet"])
        }
    }
}
