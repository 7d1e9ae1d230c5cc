import Foundation

extension SyntheticWorld {
    /// One listening event as generated: seconds after the start of the log, user, track, milliseconds played.
    struct RawPlay {
        var offset: UInt32
        var user: Int32
        var track: Int32
        var msPlayed: Int32
    }

    /// Everything generated for one block of consecutive users. Blocks are concatenated in user order, so the result
    /// does not depend on which thread generated which block.
    struct UserBlock {
        var plays: [RawPlay] = []
        var likes: [Like] = []
        var follows: [Follow] = []
        var dislikes: [Dislike] = []
        var tasteGenres: [Int32] = []
        var tasteWeights: [Float] = []
        var favouriteCounts: [Int32] = []
        var favourites: [Int32] = []
        var targetTracks: [Int32] = []
        var distinctTracks: [Int32] = []
    }

    /// Generates users `range` from their own streams (seeded by world seed and user index).
    static func generateUsers(
        _ range: Range<Int>, config c: SyntheticWorldConfig, catalog: Catalog, maxTastes: Int
    ) -> UserBlock {
        var out = UserBlock()
        let g = catalog.genreCount
        let start = c.startTimestamp
        let end = c.endTimestamp
        let maxTarget = max(c.minTracksPerUser, min(c.maxTracksPerUser, catalog.trackCount / 4))
        let mu = Foundation.log(c.meanTracksPerUser) - c.activitySigma * c.activitySigma / 2
        var tasteCountCDF = c.tasteCountProbabilities
        CDF.accumulate(&tasteCountCDF, 0..<tasteCountCDF.count)
        let expected = Int(Double(range.count) * c.meanTracksPerUser * (1 + c.extraPlaysMean) * 1.1)
        out.plays.reserveCapacity(expected)
        out.tasteGenres.reserveCapacity(range.count * maxTastes)
        out.tasteWeights.reserveCapacity(range.count * maxTastes)

        // mark[t] == local user index when the current user already has track t.
        var mark = [Int32](repeating: -1, count: catalog.trackCount)
        var chosen = [Int32]()
        var tastes = [Int32]()
        var tasteW = [Double]()
        var tasteCDF = [Double]()
        var favs = [Int32]()
        var favFirstPlay = [Int64]()
        var sameFamily = [Int]()
        var candidateCDF = [Double](repeating: 0, count: g)

        catalog.genreCDF.withUnsafeBufferPointer { genreCDF in
        catalog.genreArtistCDF.withUnsafeBufferPointer { artistCDF in
        catalog.trackCDF.withUnsafeBufferPointer { trackCDF in
        catalog.genreArtists.withUnsafeBufferPointer { genreArtists in
        catalog.artistTrackStart.withUnsafeBufferPointer { trackStart in
        catalog.trackGenre.withUnsafeBufferPointer { trackGenre in
        catalog.trackArtist.withUnsafeBufferPointer { trackArtist in
        catalog.trackRelease.withUnsafeBufferPointer { trackRelease in
        catalog.trackDurationMs.withUnsafeBufferPointer { duration in
        mark.withUnsafeMutableBufferPointer { mark in
            let gStart = catalog.genreArtistStart

            func artist(inGenre x: Int, _ u: Double) -> Int32 {
                genreArtists[CDF.sample(artistCDF, gStart[x]..<gStart[x + 1], u)]
            }
            func track(ofArtist a: Int32, _ u: Double) -> Int32 {
                let ai = Int(a)
                return Int32(CDF.sample(trackCDF, Int(trackStart[ai])..<Int(trackStart[ai + 1]), u))
            }

            for user in range {
                let local = Int32(user - range.lowerBound)
                var rng = SyntheticWorld.rng(seed: c.seed, stream: .users, index: UInt64(user))

                // Tastes: a primary genre by popularity, then 0-2 more, preferring its family.
                let k = min(g, 1 + tasteCountCDF.withUnsafeBufferPointer {
                    CDF.sample($0, 0..<tasteCountCDF.count, rng.nextDouble())
                })
                tastes.removeAll(keepingCapacity: true)
                tastes.append(Int32(CDF.sample(genreCDF, 0..<g, rng.nextDouble())))
                while tastes.count < k {
                    let family = c.genres[Int(tastes[0])].family
                    sameFamily.removeAll(keepingCapacity: true)
                    for x in 0..<g where c.genres[x].family == family && !tastes.contains(Int32(x)) {
                        sameFamily.append(x)
                    }
                    let useFamily = rng.nextDouble() < c.sameFamilyProbability && !sameFamily.isEmpty
                    for x in 0..<g {
                        let allowed = !tastes.contains(Int32(x)) && (!useFamily || c.genres[x].family == family)
                        candidateCDF[x] = allowed ? catalog.genreWeights[x] : 0
                    }
                    CDF.accumulate(&candidateCDF, 0..<g)
                    let pick = candidateCDF.withUnsafeBufferPointer { CDF.sample($0, 0..<g, rng.nextDouble()) }
                    if tastes.contains(Int32(pick)) { break }  // only when every genre is taken
                    tastes.append(Int32(pick))
                }
                // Weights: exponential draws sorted so the primary taste weighs most.
                tasteW.removeAll(keepingCapacity: true)
                for _ in tastes { tasteW.append(0.2 - Foundation.log(max(1e-300, rng.nextDouble()))) }
                tasteW.sort(by: >)
                let wTotal = tasteW.reduce(0, +)
                for i in tasteW.indices { tasteW[i] /= wTotal }
                tasteCDF = tasteW
                CDF.accumulate(&tasteCDF, 0..<tasteCDF.count)
                for i in 0..<maxTastes {
                    out.tasteGenres.append(i < tastes.count ? tastes[i] : -1)
                    out.tasteWeights.append(i < tastes.count ? Float(tasteW[i]) : 0)
                }
                func tasteGenre(_ u: Double) -> Int {
                    Int(tastes[tasteCDF.withUnsafeBufferPointer { CDF.sample($0, 0..<tastes.count, u) }])
                }

                // Favorite artists: popular artists of the user's genres.
                favs.removeAll(keepingCapacity: true)
                let nFavs = c.favouriteArtistsMin + rng.below(c.favouriteArtistsMax - c.favouriteArtistsMin + 1)
                var tries = 0
                while favs.count < nFavs && tries < 4 * nFavs + 4 {
                    tries += 1
                    let x = tasteGenre(rng.nextDouble())
                    let a = artist(inGenre: x, rng.nextDouble())
                    if !favs.contains(a) { favs.append(a) }
                }
                out.favouriteCounts.append(Int32(favs.count))
                out.favourites.append(contentsOf: favs)

                // Activity: log-normal number of distinct tracks.
                let draw = Foundation.exp(mu + c.activitySigma * rng.nextGaussian()).rounded()
                let target = Int(min(Double(maxTarget), max(Double(c.minTracksPerUser), draw)))
                out.targetTracks.append(Int32(target))

                // Distinct tracks: favorite artist, exploration (any genre by popularity), or a taste genre; then an
                // artist by popularity within the genre, then a track by popularity within the artist.
                chosen.removeAll(keepingCapacity: true)
                var attempts = 0
                let maxAttempts = 20 * target + 100
                while chosen.count < target && attempts < maxAttempts {
                    attempts += 1
                    let u = rng.nextDouble()
                    let a: Int32
                    if u < c.favouriteShare && !favs.isEmpty {
                        a = favs[rng.below(favs.count)]
                    } else if u < c.favouriteShare + c.explorationRate {
                        a = artist(inGenre: CDF.sample(genreCDF, 0..<g, rng.nextDouble()), rng.nextDouble())
                    } else {
                        a = artist(inGenre: tasteGenre(rng.nextDouble()), rng.nextDouble())
                    }
                    let t = track(ofArtist: a, rng.nextDouble())
                    if mark[Int(t)] == local { continue }
                    mark[Int(t)] = local
                    chosen.append(t)
                }
                out.distinctTracks.append(Int32(chosen.count))

                // Plays of each pair, never before the track's release.
                favFirstPlay.removeAll(keepingCapacity: true)
                favFirstPlay.append(contentsOf: repeatElement(Int64.max, count: favs.count))
                let userDislikesStart = out.dislikes.count
                for t in chosen {
                    let ti = Int(t)
                    let onTaste = tastes.contains(trackGenre[ti])
                    let lo = max(start, trackRelease[ti])
                    let first = lo + rng.upTo(end - lo)
                    let extra = rng.geometric(
                        mean: onTaste ? c.extraPlaysMean : c.extraPlaysMean * c.offTasteRepeatFactor, cap: 500)
                    let skipP = onTaste ? c.skipProbabilityOnTaste : c.skipProbabilityOffTaste
                    let dur = Int(duration[ti])
                    let pairStart = out.plays.count
                    var listened = 0
                    var firstListen = Int64.max
                    var last = first
                    for p in 0...extra {
                        let ts = p == 0 ? first : first + rng.upTo(end - first)
                        let ms: Int
                        if rng.nextDouble() < skipP {
                            ms = 500 + rng.below(29_500)
                        } else {
                            ms = rng.nextDouble() < c.fullPlayProbability ? dur : 30_000 + rng.below(dur - 30_000)
                            listened += 1
                            firstListen = min(firstListen, ts)
                        }
                        last = max(last, ts)
                        out.plays.append(RawPlay(
                            offset: UInt32(ts - start), user: Int32(user), track: t, msPlayed: Int32(ms)))
                    }
                    let n = extra + 1
                    if let f = favs.firstIndex(of: trackArtist[ti]), firstListen < favFirstPlay[f] {
                        favFirstPlay[f] = firstListen
                    }
                    if onTaste {
                        // Like an often-played pair at one of its full listens.
                        if n >= c.likeMinPlays && listened > 0 && rng.nextDouble() < c.likeProbability {
                            var pick = rng.below(listened)
                            for p in pairStart..<out.plays.count where out.plays[p].msPlayed >= 30_000 {
                                if pick == 0 {
                                    out.likes.append(Like(
                                        user: Int32(user), track: t,
                                        timestamp: start + Int64(out.plays[p].offset)))
                                    break
                                }
                                pick -= 1
                            }
                        }
                    } else if listened == 0 && rng.nextDouble() < c.dislikeTrackProbability {
                        // Dislike an off-taste track that was always skipped, at its last skip; sometimes its
                        // artist too, when the user played nothing else by it.
                        out.dislikes.append(Dislike(user: Int32(user), target: t, kind: .track, timestamp: last))
                        let a = trackArtist[ti]
                        if rng.nextDouble() < c.dislikeArtistProbability
                            && !chosen.contains(where: { $0 != t && trackArtist[Int($0)] == a })
                            && !out.dislikes[userDislikesStart...].contains(where: { $0.kind == .artist && $0.target == a })
                        {
                            out.dislikes.append(Dislike(user: Int32(user), target: a, kind: .artist, timestamp: last))
                        }
                    }
                }

                // Follows of favorite artists: at the first full listen of one of their tracks, or at a random
                // moment of the log when the user played none.
                for (i, a) in favs.enumerated() where rng.nextDouble() < c.followProbability {
                    let ts = favFirstPlay[i] != Int64.max ? favFirstPlay[i] : start + rng.upTo(end - start)
                    out.follows.append(Follow(user: Int32(user), artist: a, timestamp: ts))
                }
            }
        }}}}}}}}}}
        return out
    }
}
