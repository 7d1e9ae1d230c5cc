import EncoreAudioModel
import EncoreCore

extension AudioModelFiles {
    /// The track ids and embeddings of a file written by ``writeEmbeddings(_:ids:to:)`` (`encore-train embed`):
    /// `/tracks/ids` and `/embeddings` (tracks x dim, float32).
    /// - Throws: ``AudioModelError`` naming the file and the object when either is missing or their sizes differ.
    public static func readEmbeddings(from path: String) throws(AudioModelError) -> (ids: [String], vectors: Matrix) {
        do {
            var file = try HDF5File.open(at: path)
            let ids = try file.readStrings(at: "/tracks/ids").values
            let vectors = try file.readMatrix(at: "/embeddings")
            try file.close()
            guard vectors.rows == ids.count else {
                throw BundleError.shapeMismatch(path: path, object: "/embeddings", reason: "\(vectors.rows) rows for \(ids.count) ids")
            }
            return (ids, vectors)
        } catch {
            throw wrap(error)
        }
    }
}
