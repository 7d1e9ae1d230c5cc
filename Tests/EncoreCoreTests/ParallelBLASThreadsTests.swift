import Dispatch
import Foundation
import Testing
@testable import EncoreCore

/// Two `Parallel.forEach` regions started from two threads, overlapping in a chosen order, must keep OpenBLAS on one
/// thread while either runs and give back the count it had before.
@Suite(.serialized) struct ParallelBLASThreadsTests {
    /// Readings of `BLAS.threads` taken inside the regions, by label.
    final class Readings: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [String: Int] = [:]
        func record(_ label: String) {
            let n = BLAS.threads
            lock.lock(); values[label] = n; lock.unlock()
        }
        var all: [String: Int] { lock.lock(); defer { lock.unlock() }; return values }
    }

    /// `firstEndsFirst`: region A starts, region B starts, then A ends while B still runs (the order in which a
    /// region that restores its own saved count would raise BLAS's count under B); otherwise B ends first.
    @Test(arguments: [true, false])
    func overlappingRegionsKeepBLASSingleThreadedAndRestoreIt(firstEndsFirst: Bool) throws {
        // Other suites run parallel regions at the same time, so the counts before and after are read as the count
        // OpenBLAS has outside every region; inside one, it must be 1 whatever else runs.
        let regions = BLASThreadRegions.shared
        let original = regions.threadsOutsideRegions
        defer { BLAS.setThreads(original) }
        BLAS.setThreads(2)
        let before = regions.threadsOutsideRegions
        try #require(before == 2, "OpenBLAS accepts 2 threads")

        let readings = Readings()
        let aStarted = DispatchSemaphore(value: 0), bStarted = DispatchSemaphore(value: 0)
        let aEnded = DispatchSemaphore(value: 0), bEnded = DispatchSemaphore(value: 0)
        let aJoined = DispatchSemaphore(value: 0), bJoined = DispatchSemaphore(value: 0)
        let timeout = DispatchTime.now() + 60
        let a = Thread {
            Parallel.forEach(2, threads: 2) { i in
                guard i == 0 else { return }
                readings.record("A after start")
                aStarted.signal()
                _ = bStarted.wait(timeout: timeout)
                if !firstEndsFirst { _ = bEnded.wait(timeout: timeout) }
                readings.record("A before end")
            }
            aEnded.signal()
            aJoined.signal()
        }
        let b = Thread {
            _ = aStarted.wait(timeout: timeout)
            Parallel.forEach(2, threads: 2) { i in
                guard i == 0 else { return }
                readings.record("B after start")
                bStarted.signal()
                if firstEndsFirst { _ = aEnded.wait(timeout: timeout) }
                readings.record("B before end")
            }
            bEnded.signal()
            bJoined.signal()
        }
        a.start()
        b.start()
        #expect(aJoined.wait(timeout: timeout) == .success && bJoined.wait(timeout: timeout) == .success)

        let inside = readings.all
        #expect(inside.count == 4, "\(inside)")
        for (label, n) in inside.sorted(by: { $0.key < $1.key }) {
            #expect(n == 1, "BLAS ran \(n) threads at '\(label)' (first ends first: \(firstEndsFirst))")
        }
        #expect(regions.threadsOutsideRegions == before, "BLAS count after both regions")
    }
}
