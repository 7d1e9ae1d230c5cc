import EncoreAudioModel
import EncoreCore

extension AudioModelFiles {
    /// The track ids and embeddings of a file written by ``writeEmbeddings(_:ids:to:)`` (`encore-train embed`):
    /// `/tracks/ids` and `/embeddings` (tracks x dim, float32).
    /// - Throws: ``AudioModelError/invalidInput(path:reason:)`` naming the file when it is not an embeddings file
    ///   (either object missing) or their sizes differ; HDF5 errors for an unreadable file.
    public static func readEmbeddings(from path: String) throws(AudioModelError) -> (ids: [String], vectors: Matrix) {
        var missing: [String] = []
        let read: (ids: [String], vectors: Matrix)?
        do throws(BundleError) {
            var file = try HDF5File.open(at: path)
            missing = ["/tracks/ids", "/embeddings"].filter { !file.exists($0) }
            if missing.isEmpty {
                read = (try file.readStrings(at: "/tracks/ids").values, try file.readMatrix(at: "/embeddings"))
            } else {
                read = nil
            }
            try file.close()
        } catch {
            throw wrap(error)
        }
        guard let read else {
            throw .invalidInput(
                path: path,
                reason: "not an embeddings file: \(missing.joined(separator: " and ")) missing (encore-train embed writes /tracks/ids and /embeddings)")
        }
        guard read.vectors.rows == read.ids.count else {
            throw .invalidInput(path: path, reason: "/embeddings has \(read.vectors.rows) rows for \(read.ids.count) ids in /tracks/ids")
        }
        return read
    }
}
