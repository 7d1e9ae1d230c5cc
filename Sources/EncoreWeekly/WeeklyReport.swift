import Foundation
import EncoreCore
import EncoreData
import EncoreFactorization
import EncoreIndex
import EncorePlaylists
import EncoreStorage
import EncoreEvaluation

/// What the weekly job made, as text for the terminal and an HTML page with plots.
public struct WeeklyReport {
    /// The report as plain text (what `encore-train weekly` prints).
    public let text: String
    let html: String

    init(
        job: WeeklyJob, timings: [(stage: String, seconds: Double, resumed: Bool)], loadSeconds: Double,
        cpuSeconds: [String: Double] = [:], peakResidentBytes: [String: Int] = [:], peaksArePerStage: Bool = true
    ) {
        let users = job.plays.userIDs.count
        let items = job.plays.itemIDs.count
        var lines: [String] = ["Weekly job for the week of \(job.week) (\(users) users, \(items) tracks)"]
        var page = HTMLReport(title: "Encore weekly job — week of \(job.week)")

        // Stage times.
        let stageRows = [("load", loadSeconds, false)] + timings.map { ($0.stage, $0.seconds, $0.resumed) }
        lines.append("stages: " + stageRows.map { String(format: "%@ %.1fs%@", $0.0, $0.1, $0.2 ? " (earlier run)" : "") }
            .joined(separator: ", "))
        if !cpuSeconds.isEmpty {
            lines.append("processor time (user + system, all threads): " + stageRows.compactMap { row in
                cpuSeconds[row.0].map { String(format: "%@ %.1fs", row.0, $0) }
            }.joined(separator: ", "))
        }
        if let highest = peakResidentBytes.values.max() {
            // The kernel's own peak (VmHWM, what `time -v` reports) is reset at each stage, so the job's is the
            // highest stage's.
            lines.append("peak resident memory" + (peaksArePerStage ? "" : " (since the job started: the system does not reset the peak)")
                + ": " + stageRows.compactMap { row in
                    peakResidentBytes[row.0].map { String(format: "%@ %.2f GiB", row.0, Double($0) / 1_073_741_824) }
                }.joined(separator: ", ") + String(format: "; whole job %.2f GiB", Double(highest) / 1_073_741_824))
        }
        page.heading("Stages")
        page.barChart(title: "Seconds per stage", bars: stageRows.map { ($0.0 + ($0.2 ? " (resumed)" : ""), $0.1) }, unit: " s")
        if !peakResidentBytes.isEmpty {
            page.barChart(title: "Peak resident memory per stage", bars: stageRows.compactMap { row in
                peakResidentBytes[row.0].map { (row.0, Double($0) / 1_073_741_824) }
            }, unit: " GiB")
        }

        // Catalog-only tracks and content spaces.
        if job.catalogOnlyTracks > 0 {
            lines.append("catalog tracks without plays: \(job.catalogOnlyTracks) of \(items) items (zero collaborative vectors)")
        }
        let contentRows = job.contentReportRows()
        if !contentRows.isEmpty {
            page.heading("Content spaces (tracks with a vector)")
            page.table(header: ["space", "tracks", "catalog-only tracks", "details"], rows: contentRows)
            for row in contentRows { lines.append("content \(row[0]): \(row[1]) tracks; catalog-only \(row[2]); \(row[3])") }
        }

        // Discover Weekly.
        if let dw = job.discoverWeekly {
            let sizes = (0..<dw.userCount).map { dw.indptr[$0 + 1] - dw.indptr[$0] }
            let full = sizes.filter { $0 >= 30 }.count
            let covered = sizes.filter { $0 > 0 }.count
            let distinct = Set(dw.items).count
            // Tracks per source (a track suggested by several sources counts for each of them).
            var sourceCounts: [String: Int] = [:]
            for s in dw.sources {
                for part in dw.sourceNames[Int(s)].split(separator: "+") { sourceCounts[String(part), default: 0] += 1 }
            }
            var artistsPerList = 0.0, listsWithArtists = 0
            if job.hasCatalog {
                for u in 0..<dw.userCount where sizes[u] > 0 {
                    let artists = Set(dw.items[dw.indptr[u]..<dw.indptr[u + 1]].map { job.catalog.artist(of: $0) })
                    artistsPerList += Double(artists.count) / Double(sizes[u])
                    listsWithArtists += 1
                }
            }
            let similarity = Self.intraListSimilarity(dw, space: job.fitted?.model.itemFactors)
            lines.append(String(format: "discover weekly: %d users covered (%.1f%%), %d with 30 tracks, mean size %.1f, %d distinct tracks (catalog coverage %.1f%%)",
                                covered, 100 * Double(covered) / Double(max(1, users)), full,
                                Double(dw.items.count) / Double(max(1, users)), distinct, 100 * Double(distinct) / Double(max(1, items))))
            if listsWithArtists > 0 {
                lines.append(String(format: "diversity: %.2f distinct artists per track in a playlist, mean intra-list cosine %.3f",
                                    artistsPerList / Double(listsWithArtists), similarity))
            } else {
                lines.append(String(format: "diversity: mean intra-list cosine %.3f", similarity))
            }
            lines.append("tracks by source (one track may have several): " + sourceCounts.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            page.heading("Discover Weekly")
            page.table(header: ["measure", "value"], rows: [
                ["users covered", "\(covered) of \(users)"], ["users with 30 tracks", "\(full)"],
                ["distinct tracks", "\(distinct) (\(String(format: "%.1f", 100 * Double(distinct) / Double(max(1, items))))% of the catalog)"],
                ["mean intra-list cosine", String(format: "%.3f", similarity)],
                ["distinct artists per track", listsWithArtists > 0 ? String(format: "%.2f", artistsPerList / Double(listsWithArtists)) : "n/a (no catalog)"],
            ])
            page.histogram(title: "Playlist length (users)", values: sizes)
            page.barChart(title: "Tracks by candidate source", bars: sourceCounts.sorted { $0.value > $1.value }.map { ($0.key, Double($0.value)) })
        }

        // Daily Mix.
        if let dm = job.dailyMixes {
            let perUser = (0..<dm.userCount).map { dm.userIndptr[$0 + 1] - dm.userIndptr[$0] }
            let mixSizes = (0..<dm.names.count).map { dm.mixIndptr[$0 + 1] - dm.mixIndptr[$0] }
            let familiar = dm.familiar.filter { $0 != 0 }.count
            lines.append(String(format: "daily mix: %d users with mixes, %.2f mixes per user, mean mix size %.1f, %.1f%% familiar",
                                perUser.filter { $0 > 0 }.count, Double(dm.names.count) / Double(max(1, users)),
                                Double(dm.items.count) / Double(max(1, dm.names.count)), 100 * Double(familiar) / Double(max(1, dm.items.count))))
            page.heading("Daily Mix")
            page.histogram(title: "Mixes per user", values: perUser)
            page.histogram(title: "Tracks per mix", values: mixSizes)
            if let truth = job.tasteTruth {
                let d = PlaylistEvaluation.tasteDominance(table: dm, truth: truth)
                lines.append(String(
                    format: "daily mix taste dominance (ground truth): %d mixes of %d users; %.1f%% of a mix's familiar tracks from its dominant taste, %.1f%% of all its tracks (%.1f%% of the new ones); %.1f%% of mixes dominated (>= %.0f%%) by one of the user's tastes; %.1f%% of Daily Mix 1 from the user's heaviest taste",
                    d.mixes, d.users, 100 * d.meanPurity, 100 * d.meanTrackShare, 100 * d.meanNewTrackShare,
                    100 * d.dominatedShare, 100 * d.threshold, 100 * d.firstMixTopTasteShare))
                lines.append("daily mix mixes per user by true taste count: " + d.mixesByTasteCount.map {
                    String(format: "%d tastes %.2f (%d users)", $0.tastes, $0.meanMixes, $0.users)
                }.joined(separator: ", "))
                page.heading("Daily Mix against the true tastes")
                page.table(header: ["measure", "value"], rows: [
                    ["mixes scored (users)", "\(d.mixes) (\(d.users))"],
                    ["familiar tracks from the mix's dominant taste", String(format: "%.1f%%", 100 * d.meanPurity)],
                    ["all tracks from the mix's dominant taste", String(format: "%.1f%%", 100 * d.meanTrackShare)],
                    ["new tracks from the mix's dominant taste", String(format: "%.1f%%", 100 * d.meanNewTrackShare)],
                    [String(format: "mixes dominated (>= %.0f%%) by one of the user's tastes", 100 * d.threshold),
                     String(format: "%.1f%%", 100 * d.dominatedShare)],
                    ["Daily Mix 1 tracks from the user's heaviest taste", String(format: "%.1f%%", 100 * d.firstMixTopTasteShare)],
                ] + d.mixesByTasteCount.map {
                    ["mixes per user with \($0.tastes) true taste\($0.tastes == 1 ? "" : "s")", String(format: "%.2f (%d users)", $0.meanMixes, $0.users)]
                })
            }
        }

        // Metrics.
        if !job.evaluation.isEmpty {
            page.heading("Offline evaluation (train before the last week, test on its first plays)")
            let rows = job.evaluation.sorted { $0.key < $1.key }.map { [$0.key, String(format: "%.4f", $0.value)] }
            page.table(header: ["metric", "value"], rows: rows)
            let hits = job.evaluation.filter { $0.key.hasSuffix("hit_rate@30") }.sorted { $0.key < $1.key }
            if !hits.isEmpty {
                page.barChart(title: "Hit rate of 30-track lists", bars: hits.map { (String($0.key.dropFirst(7).prefix { $0 != "/" }), $0.value) })
            }
            lines.append("evaluation: " + job.evaluation.sorted { $0.key < $1.key }.map { String(format: "%@=%.4f", $0.key, $0.value) }.joined(separator: " "))
        }
        text = lines.joined(separator: "\n")
        html = page.render()
    }

    /// Mean cosine similarity between the tracks of a playlist, over a sample of up to 500 playlists.
    static func intraListSimilarity(_ dw: DiscoverWeeklyTable, space: Matrix?) -> Double {
        guard let space else { return .nan }
        let norms = space.rowNorms()
        var total = 0.0, pairs = 0
        let step = max(1, dw.userCount / 500)
        for u in stride(from: 0, to: dw.userCount, by: step) {
            let list = Array(dw.items[dw.indptr[u]..<dw.indptr[u + 1]])
            for a in 0..<list.count {
                for b in (a + 1)..<list.count {
                    let na = norms[Int(list[a])], nb = norms[Int(list[b])]
                    guard na > 0, nb > 0 else { continue }
                    let dot = zip(space.row(Int(list[a])), space.row(Int(list[b]))).reduce(Float(0)) { $0 + $1.0 * $1.1 }
                    total += Double(dot / (na * nb))
                    pairs += 1
                }
            }
        }
        return pairs > 0 ? total / Double(pairs) : .nan
    }

    func write(to dir: String) throws {
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try text.write(toFile: (dir as NSString).appendingPathComponent("report.txt"), atomically: true, encoding: .utf8)
        try html.write(toFile: (dir as NSString).appendingPathComponent("report.html"), atomically: true, encoding: .utf8)
    }
}
