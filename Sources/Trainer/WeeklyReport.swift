import Foundation
import RecCore

/// What the weekly job made, as text for the terminal and an HTML page with plots.
struct WeeklyReport {
    let text: String
    let html: String

    init(job: WeeklyJob, timings: [(stage: String, seconds: Double, resumed: Bool)], loadSeconds: Double) {
        let users = job.plays.userIDs.count
        let items = job.plays.itemIDs.count
        var lines: [String] = ["Weekly job for the week of \(job.week) (\(users) users, \(items) tracks)"]
        var page = HTMLReport(title: "Encore weekly job — week of \(job.week)")

        // Stage times.
        let stageRows = [("load", loadSeconds, false)] + timings.map { ($0.stage, $0.seconds, $0.resumed) }
        lines.append("stages: " + stageRows.map { String(format: "%@ %.1fs%@", $0.0, $0.1, $0.2 ? " (earlier run)" : "") }
            .joined(separator: ", "))
        page.heading("Stages")
        page.barChart(title: "Seconds per stage", bars: stageRows.map { ($0.0 + ($0.2 ? " (resumed)" : ""), $0.1) }, unit: " s")

        // Discover Weekly.
        if let dw = job.discoverWeekly {
            let sizes = (0..<dw.userCount).map { dw.indptr[$0 + 1] - dw.indptr[$0] }
            let full = sizes.filter { $0 >= 30 }.count
            let covered = sizes.filter { $0 > 0 }.count
            let distinct = Set(dw.items).count
            var sourceCounts: [String: Int] = [:]
            for s in dw.sources { sourceCounts[dw.sourceNames[Int(s)], default: 0] += 1 }
            var artistsPerList = 0.0, listsWithArtists = 0
            if job.hasCatalog {
                for u in 0..<dw.userCount where sizes[u] > 0 {
                    let artists = Set(dw.items[dw.indptr[u]..<dw.indptr[u + 1]].map { job.catalogue.artist(of: $0) })
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
            lines.append("sources: " + sourceCounts.sorted { $0.value > $1.value }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
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
