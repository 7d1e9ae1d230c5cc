import Foundation
import Testing
@testable import RecCore
@testable import Trainer
import EncoreTestSupport

/// `import-factors` on files NumPy writes: implicit-style `.npz` models (stored and deflated), the Spark job's
/// `.npy` shards with `.ids` files, and single `.npy` files with id files.
@Suite(.enabled(if: TestPython.shouldRun, "numpy is not importable (set ENCORE_PYTHON); CI sets ENCORE_REQUIRE_H5PY=1"))
struct ImportFactorsTests {
    /// Factor value of row `r`, column `c`: exact in float32, different in every cell of a small matrix.
    static func value(_ side: Int, _ r: Int, _ c: Int) -> Float { Float((r * 7 + c * 3 + side * 5) % 23) / 8 - 1.25 }

    /// Writes the fixtures with NumPy into `dir`: users 5 x 4, items 9 x 4.
    static func writeFixtures(_ dir: String) throws {
        let script = """
            import numpy as np, os, sys
            d = sys.argv[1]
            def m(side, rows, cols=4):
                r = np.arange(rows)[:, None]; c = np.arange(cols)[None, :]
                return (((r * 7 + c * 3 + side * 5) % 23) / 8 - 1.25).astype(np.float32)
            U, I = m(0, 5), m(1, 9)
            extra = dict(regularization=np.float64(0.25), alpha=np.float64(3.0), factors=np.int64(4), iterations=np.int64(15),
                         use_cg=True, dtype=np.array('float32'), random_state=np.int64(1))
            np.savez(os.path.join(d, 'implicit.npz'), user_factors=U, item_factors=I, **extra)
            np.savez_compressed(os.path.join(d, 'compressed.npz'), user_factors=U, item_factors=I)
            os.makedirs(os.path.join(d, 'users')); os.makedirs(os.path.join(d, 'items'))
            uid = ['u%d' % k for k in range(5)]; iid = ['caf\\u00e9 %d' % k for k in range(9)]
            for name, rows in [('part-00000', slice(0, 2)), ('part-00001', slice(2, 2)), ('part-00002', slice(2, 5))]:
                np.save(os.path.join(d, 'users', name + '.npy'), U[rows])
                open(os.path.join(d, 'users', name + '.ids'), 'w', encoding='utf-8').write(''.join(x + '\\n' for x in uid[rows]))
            np.save(os.path.join(d, 'items', 'part-00000.npy'), I.astype(np.float64))
            open(os.path.join(d, 'items', 'part-00000.ids'), 'w', encoding='utf-8').write('\\n'.join(iid))
            np.save(os.path.join(d, 'U.npy'), U); np.save(os.path.join(d, 'I.npy'), I)
            open(os.path.join(d, 'uid.txt'), 'w').write('\\n'.join(uid) + '\\n')
            open(os.path.join(d, 'short.txt'), 'w').write('a\\nb\\n')
            open(os.path.join(d, 'dup.txt'), 'w').write('a\\nb\\na\\nc\\nd\\n')
            open(os.path.join(d, 'notzip.npz'), 'w').write('hello')
            np.savez(os.path.join(d, 'onlyusers.npz'), user_factors=U)
            """
        let result = try TestPython.run(["-c", script, dir])
        #expect(result.status == 0, "fixture script failed:\n\(result.output)")
    }

    func checkFactors(_ b: ModelBundle, userIDs: [String], itemIDs: [String]) {
        #expect(b.userIDs.ids == userIDs && b.itemIDs.ids == itemIDs)
        #expect(b.model.parameters.factors == 4)
        for r in 0..<5 { #expect(b.model.userFactors.row(r) == (0..<4).map { Self.value(0, r, $0) }, "user row \(r)") }
        for r in 0..<9 { #expect(b.model.itemFactors.row(r) == (0..<4).map { Self.value(1, r, $0) }, "item row \(r)") }
    }

    @Test("implicit .npz models (stored and deflated), Spark-style shards and .npy files import exactly")
    func importsExactly() throws {
        if let missing = TestPython.h5pyMissing { Issue.record(Comment(rawValue: missing)); return }
        let dir = makeTemporaryDirectory("import-factors")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeFixtures(dir)
        let rowIDs = (0..<9).map(String.init)

        try run(["import-factors", "--users", "\(dir)/implicit.npz", "--items", "\(dir)/implicit.npz", "--output", "\(dir)/a.h5"])
        let a = try ModelBundle.read(from: "\(dir)/a.h5")
        checkFactors(a, userIDs: Array(rowIDs.prefix(5)), itemIDs: rowIDs)
        // implicit's recorded hyperparameters become the fold-in's.
        #expect(a.model.parameters.regularization == 0.25 && a.model.parameters.alpha == 3)
        // implicit's rule for its own models: confidences not floored.
        #expect(a.model.parameters.confidenceFloor == 0)
        #expect(a.userItems.nnz == 0 && a.userItems.rows == 5 && a.userItems.cols == 9)

        try run(["import-factors", "--users", "\(dir)/compressed.npz", "--items", "\(dir)/compressed.npz",
                 "--user-ids", "\(dir)/uid.txt", "--output", "\(dir)/b.h5", "--regularization", "0.5"])
        let b = try ModelBundle.read(from: "\(dir)/b.h5")
        checkFactors(b, userIDs: (0..<5).map { "u\($0)" }, itemIDs: rowIDs)
        #expect(b.model.parameters.regularization == 0.5 && b.model.parameters.alpha == 1)

        let itemIDs = (0..<9).map { "caf\u{e9} \($0)" }
        try run(["import-factors", "--users", "\(dir)/users", "--items", "\(dir)/items", "--output", "\(dir)/c.h5"])
        let c = try ModelBundle.read(from: "\(dir)/c.h5")
        checkFactors(c, userIDs: (0..<5).map { "u\($0)" }, itemIDs: itemIDs)
        // .npy shards (Spark's) fold in with Spark's confidence rule, 1 + alpha * r: floor 1; or the one given.
        #expect(c.model.parameters.confidenceFloor == 1)
        try run(["import-factors", "--users", "\(dir)/users", "--items", "\(dir)/items", "--output", "\(dir)/c2.h5",
                 "--confidence-floor", "0.5"])
        #expect(try ModelBundle.read(from: "\(dir)/c2.h5").model.parameters.confidenceFloor == 0.5)

        try "user\titem\tweight\nu1\tcaf\u{e9} 3\t2\nu1\tcaf\u{e9} 3\t1\nu4\tcaf\u{e9} 0\t5\nstranger\tcaf\u{e9} 0\t1\n"
            .write(toFile: "\(dir)/log.tsv", atomically: true, encoding: .utf8)
        try run(["import-factors", "--users", "\(dir)/U.npy", "--user-ids", "\(dir)/uid.txt", "--items", "\(dir)/items",
                 "--output", "\(dir)/d.h5", "--interactions", "\(dir)/log.tsv", "--weighting", "linear", "--weight-alpha", "2"])
        let d = try ModelBundle.read(from: "\(dir)/d.h5")
        checkFactors(d, userIDs: (0..<5).map { "u\($0)" }, itemIDs: itemIDs)
        // Summed (2 + 1 = 3), weighted 1 + 2 * 3 = 7; the stranger's row left out.
        #expect(d.userItems.nnz == 2)
        #expect(d.userItems.value(row: 1, col: 3) == 7 && d.userItems.value(row: 4, col: 0) == 11)
        #expect(d.confidence != nil)
    }

    @Test("bad factor files are refused with the file and the reason")
    func badInputIsRefused() throws {
        if let missing = TestPython.h5pyMissing { Issue.record(Comment(rawValue: missing)); return }
        let dir = makeTemporaryDirectory("import-factors-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeFixtures(dir)
        func message(_ args: [String]) -> String {
            errorMessage { try run(["import-factors", "--output", "\(dir)/x.h5"] + args) } ?? "no error"
        }
        let short = message(["--users", "\(dir)/U.npy", "--user-ids", "\(dir)/short.txt", "--items", "\(dir)/items"])
        #expect(short.contains("short.txt") && short.contains("2 ids for 5 factor rows"), "\(short)")
        let noIDs = message(["--users", "\(dir)/U.npy", "--items", "\(dir)/items"])
        #expect(noIDs.contains("\(dir)/U.ids"), "\(noIDs)")
        let dup = message(["--users", "\(dir)/U.npy", "--user-ids", "\(dir)/dup.txt", "--items", "\(dir)/items"])
        #expect(dup.contains("user ids") && dup.contains("'a'"), "\(dup)")
        let dirIDs = message(["--users", "\(dir)/users", "--user-ids", "\(dir)/uid.txt", "--items", "\(dir)/items"])
        #expect(dirIDs.contains("give no separate ids file"), "\(dirIDs)")
        let notZip = message(["--users", "\(dir)/notzip.npz", "--items", "\(dir)/items"])
        #expect(notZip.contains("notzip.npz") && notZip.contains("not a NumPy .npz archive"), "\(notZip)")
        let noArray = message(["--users", "\(dir)/onlyusers.npz", "--items", "\(dir)/onlyusers.npz"])
        #expect(noArray.contains("no array 'item_factors' in the archive (it has: user_factors)"), "\(noArray)")
        try FileManager.default.createDirectory(atPath: "\(dir)/empty", withIntermediateDirectories: true)
        let empty = message(["--users", "\(dir)/empty", "--items", "\(dir)/items"])
        #expect(empty.contains("holds no .npy shard"), "\(empty)")
        let mixed = message(["--users", "\(dir)/U.npy", "--user-ids", "\(dir)/uid.txt", "--items", "\(dir)/implicit.npz",
                             "--item-ids", "\(dir)/uid.txt"])
        #expect(mixed.contains("5 ids for 9 factor rows"), "\(mixed)")
        #expect(!FileManager.default.fileExists(atPath: "\(dir)/x.h5"))
    }
}
