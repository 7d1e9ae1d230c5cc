import ArgumentParser
import Foundation
import RecCore

/// `encore-train export`: a bundle's playlists as JSON Lines.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export a bundle's Discover Weekly or Daily Mix playlists as JSON Lines (one object a user).",
        discussion: """
            discover-weekly: {"user": ..., "week": "YYYY-MM-DD", "tracks": [{"item": ..., "score": ..., "source": ...}]}
            daily-mix: {"user": ..., "day": "YYYY-MM-DD", "mixes": [{"name": ..., "cover": ..., "tracks": [{"item": ..., "familiar": true|false}]}]}
            """)

    enum Kind: String, ExpressibleByArgument, CaseIterable {
        case discoverWeekly = "discover-weekly"
        case dailyMix = "daily-mix"
    }

    @Option(help: "The model bundle made by `encore-train weekly`.")
    var bundle: String

    @Option(help: "discover-weekly or daily-mix.")
    var playlists: Kind

    @Option(help: "The JSON Lines file to write ('-' for standard output).")
    var output: String

    func run() throws {
        try BundleCheck.validate(bundle)
        let b = try PublishedModel.readBundle(at: bundle)
        var lines: [String] = []
        switch playlists {
        case .discoverWeekly:
            guard let table = b.discoverWeekly else { throw TrainerError("\(bundle) holds no Discover Weekly playlists (run `encore-train weekly`)") }
            lines = Self.discoverWeeklyLines(table, userIDs: b.userIDs, itemIDs: b.itemIDs)
        case .dailyMix:
            guard let table = b.dailyMixes else { throw TrainerError("\(bundle) holds no Daily Mix playlists (run `encore-train weekly`)") }
            lines = Self.dailyMixLines(table, userIDs: b.userIDs, itemIDs: b.itemIDs)
        }
        let text = lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
        if output == "-" {
            FileHandle.standardOutput.write(Data(text.utf8))
        } else {
            do {
                try AtomicFile.write(Array(text.utf8), to: output, as: FileError.self)
            } catch {
                throw TrainerError("cannot write the playlists: \(error)")
            }
        }
    }

    static func discoverWeeklyLines(_ t: DiscoverWeeklyTable, userIDs: IDMap, itemIDs: IDMap) -> [String] {
        (0..<t.userCount).map { u in
            let tracks = t.tracks(ofUser: u).map { track in
                "{\"item\":\(json(itemIDs.id(at: track.item))),\"score\":\(json(track.score)),\"source\":\(json(track.source))}"
            }
            return "{\"user\":\(json(userIDs.id(at: Int32(u)))),\"week\":\(json(t.week)),\"tracks\":[\(tracks.joined(separator: ","))]}"
        }
    }

    static func dailyMixLines(_ t: DailyMixTable, userIDs: IDMap, itemIDs: IDMap) -> [String] {
        (0..<t.userCount).map { u in
            let mixes = t.mixes(ofUser: u).map { mix in
                let tracks = mix.tracks.map { "{\"item\":\(json(itemIDs.id(at: $0.item))),\"familiar\":\($0.familiar)}" }
                return "{\"name\":\(json(mix.name)),\"cover\":\(json(itemIDs.id(at: mix.cover))),\"tracks\":[\(tracks.joined(separator: ","))]}"
            }
            return "{\"user\":\(json(userIDs.id(at: Int32(u)))),\"day\":\(json(t.day)),\"mixes\":[\(mixes.joined(separator: ","))]}"
        }
    }
}

/// A JSON string literal.
func json(_ s: String) -> String {
    var out = "\""
    for scalar in s.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        default:
            if scalar.value < 0x20 { out += String(format: "\\u%04x", scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
    }
    return out + "\""
}

/// A JSON number (finite; non-finite values become null).
func json(_ x: Float) -> String { x.isFinite ? "\(x)" : "null" }
