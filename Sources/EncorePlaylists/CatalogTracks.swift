import EncoreCore

extension TrackCatalog {
    /// The track ids of a catalog file (`tracks.tsv`: column `item` or `track`, optional `release_date`), in file
    /// order and each once, that are released before `cutoff` (Unix seconds, exclusive) or have no release date.
    ///
    /// The weekly job adds those no one has played to its items, so a track released before the week exists in
    /// the bundle (with no collaborative vector) even before its first play.
    /// - Throws: ``PlaylistError/unreadable(file:reason:)``, ``PlaylistError/missingColumn(file:column:)`` or
    ///   ``PlaylistError/malformedRow(file:line:field:reason:)`` naming the file, line and field.
    public static func trackIDs(inCatalog tracks: String, releasedBefore cutoff: Int64) throws(PlaylistError) -> [String] {
        let t = try DelimitedTable(path: tracks)
        let cItem = try t.requiredColumn("item", "track")
        let cRelease = t.column("release_date", "release")
        var seen = Set<String>()
        var out: [String] = []
        try t.forEachRow(minimumFields: max(cItem, cRelease ?? 0) + 1) { row throws(PlaylistError) in
            let id = t.string(row, cItem)
            guard !id.isEmpty else { throw t.malformed(row, cItem, "empty track id") }
            if let c = cRelease, !t.isEmpty(row, c), try t.timestamp(row, c) >= cutoff { return }
            if seen.insert(id).inserted { out.append(id) }
        }
        return out
    }
}
