import Foundation
import EncoreCore
import EncoreAudioModel

/// The files of `encore-train audio-model-bench` (a hidden command that Benchmarks/compare_audio_model.py drives):
/// a fixed batch in, named float arrays out.
public enum AudioModelBenchFiles {
    /// Reads a batch: `/input` (float32 `[rows, frames, bands]`, log-mel dB) and, when present, `/targets` (float32
    /// `[rows, factors]`, the CF targets of the rows).
    ///
    /// - Throws: ``AudioModelError/invalidInput(path:reason:)`` for a missing file or dataset or shapes that disagree.
    public static func readBatch(from path: String) throws(AudioModelError) -> (input: Tensor, targets: Tensor?) {
        let file = try AudioModelFiles.checkedOpen(path)
        guard file.exists("/input") else { throw .invalidInput(path: path, reason: "/input is missing") }
        do {
            let input = try file.read(Float.self, at: "/input")
            guard input.shape.count == 3 else {
                throw AudioModelError.invalidInput(path: path, reason: "/input must be [rows, frames, bands], found shape \(input.shape)")
            }
            let x = try Tensor(shape: input.shape, data: input.values)
            guard file.exists("/targets") else { return (x, nil) }
            let targets = try file.read(Float.self, at: "/targets")
            guard targets.shape.count == 2, targets.shape[0] == input.shape[0] else {
                throw AudioModelError.invalidInput(path: path, reason: "/targets must be [\(input.shape[0]), factors], found shape \(targets.shape)")
            }
            return (x, try Tensor(shape: targets.shape, data: targets.values))
        } catch let e as BundleError {
            throw AudioModelFiles.wrap(e)
        } catch let e as AudioModelError {
            throw e
        } catch {
            throw .invalidInput(path: path, reason: "\(error)")
        }
    }

    /// Writes float32 arrays by absolute dataset path (`/grads/conv1/weight`), creating the groups on the way,
    /// atomically.
    public static func writeArrays(_ arrays: [(path: String, values: [Float], shape: [Int])],
                                   to path: String) throws(AudioModelError) {
        do {
            try AudioModelFiles.atomically(path) { (file: borrowing HDF5File) throws(BundleError) in
                var groups: Set<String> = []
                for array in arrays {
                    let parts = array.path.split(separator: "/").dropLast()
                    var group = ""
                    for part in parts {
                        group += "/" + part
                        if !groups.contains(group) {
                            try file.createGroup(group)
                            groups.insert(group)
                        }
                    }
                    try file.write(array.values, shape: array.shape, at: array.path)
                }
            }
        } catch { throw AudioModelFiles.wrap(error) }
    }
}
