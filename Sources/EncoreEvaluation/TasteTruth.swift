import Foundation
import EncoreCore
import EncorePlaylists

/// A synthetic world's ground truth of tastes, aligned to a play log's users and items: the true genre of every track
/// and the true tastes (genres, by decreasing weight) of every user. Read from the generator's `truth_tracks.tsv`
/// (item, genre, ...) and `truth_users.tsv` (user, tastes as `genre:weight;...`, ...), it scores how well the Daily
/// Mixes follow the tastes (``PlaylistEvaluation/tasteDominance(familiarTracks:itemLabel:userTastes:threshold:)``).
public struct TasteTruth: Sendable, Equatable {
    /// The genre names; a label is a position in this list.
    public var labelNames: [String]
    /// The true genre of each item of the play log (-1 when the truth does not know the item).
    public var itemLabel: [Int32]
    /// The true tastes of each user of the play log, heaviest first (empty when the truth does not know the user).
    public var userTastes: [[Int32]]

    /// The truth with the given values.
    public init(labelNames: [String], itemLabel: [Int32], userTastes: [[Int32]]) {
        self.labelNames = labelNames
        self.itemLabel = itemLabel
        self.userTastes = userTastes
    }

    /// The name of the tracks' truth file the generator writes beside `plays.tsv`.
    public static let trackFile = "truth_tracks.tsv"
    /// The name of the users' truth file the generator writes beside `plays.tsv`.
    public static let userFile = "truth_users.tsv"

    /// Reads `truth_tracks.tsv` and `truth_users.tsv`, keeping the users and items of `userIDs` and `itemIDs` (rows
    /// of other ids are ignored).
    ///
    /// - Throws: ``PlaylistError/unreadable(file:reason:)``, ``PlaylistError/missingColumn(file:column:)`` or
    ///   ``PlaylistError/malformedRow(file:line:field:reason:)`` (a taste that is not `genre:weight`).
    public static func load(tracks: String, users: String, userIDs: IDMap, itemIDs: IDMap) throws(PlaylistError) -> TasteTruth {
        try load(tracks: try DelimitedTable(path: tracks), users: try DelimitedTable(path: users), userIDs: userIDs, itemIDs: itemIDs)
    }

    /// ``load(tracks:users:userIDs:itemIDs:)`` from the files' bytes; the names stand for the files in errors.
    public static func load(
        tracksBytes: [UInt8], usersBytes: [UInt8], userIDs: IDMap, itemIDs: IDMap
    ) throws(PlaylistError) -> TasteTruth {
        try load(tracks: try DelimitedTable(bytes: tracksBytes, name: trackFile),
                 users: try DelimitedTable(bytes: usersBytes, name: userFile), userIDs: userIDs, itemIDs: itemIDs)
    }

    static func load(tracks t: DelimitedTable, users u: DelimitedTable, userIDs: IDMap, itemIDs: IDMap) throws(PlaylistError) -> TasteTruth {
        var labels = IDMap()
        var itemLabel = [Int32](repeating: -1, count: itemIDs.count)
        let cItem = try t.requiredColumn("item", "track"), cGenre = try t.requiredColumn("genre")
        try t.forEachRow(minimumFields: max(cItem, cGenre) + 1) { row throws(PlaylistError) in
            guard let i = itemIDs.index(of: t.string(row, cItem)), !t.isEmpty(row, cGenre) else { return }
            itemLabel[Int(i)] = labels.intern(t.string(row, cGenre))
        }
        var tastes = [[Int32]](repeating: [], count: userIDs.count)
        let cUser = try u.requiredColumn("user"), cTastes = try u.requiredColumn("tastes")
        try u.forEachRow(minimumFields: max(cUser, cTastes) + 1) { row throws(PlaylistError) in
            guard let user = userIDs.index(of: u.string(row, cUser)) else { return }
            var weighted: [(label: Int32, weight: Double)] = []
            for part in u.string(row, cTastes).split(separator: ";") {
                let pieces = part.split(separator: ":")
                guard pieces.count == 2, let w = Double(pieces[1]), w.isFinite, !pieces[0].isEmpty else {
                    throw u.malformed(row, cTastes, "'\(part)' is not genre:weight")
                }
                weighted.append((labels.intern(String(pieces[0])), w))
            }
            weighted.sort { $0.weight != $1.weight ? $0.weight > $1.weight : $0.label < $1.label }
            tastes[Int(user)] = weighted.map(\.label)
        }
        return TasteTruth(labelNames: labels.ids, itemLabel: itemLabel, userTastes: tastes)
    }
}
