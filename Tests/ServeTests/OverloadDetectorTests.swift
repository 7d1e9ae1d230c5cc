import Synchronization
import Testing
@testable import ServeKit

/// A clock the test moves by hand (nanoseconds).
final class ManualClock: Sendable {
    private let nanoseconds = Atomic<UInt64>(1_000_000_000)
    var now: UInt64 { nanoseconds.load(ordering: .relaxed) }
    func advance(milliseconds: UInt64) { advance(nanoseconds: milliseconds * 1_000_000) }
    func advance(nanoseconds n: UInt64) { nanoseconds.wrappingAdd(n, ordering: .relaxed) }
}

/// The overload detector's decisions on constructed sequences of waits, on a clock moved by hand: when the queue
/// stands, which request it sheds (the bound is hand-computed: requests handled per busy nanosecond times the
/// target), that the bound does not fall when shedding leaves the queue empty, how shedding holds the queue standing
/// and how it ends, and that each request leaves the queue once.
@Suite struct OverloadDetectorTests {
    static let ms: UInt64 = 1_000_000

    /// A detector with a 5 ms target, 100 ms intervals, a long share of 1/2 and at least 10 requests per interval.
    static func detector(_ clock: ManualClock, minimumRequests: Int = 10) -> OverloadDetector {
        OverloadDetector(target: .milliseconds(5), interval: .milliseconds(100), longShare: 0.5, minimumRequests: minimumRequests,
                         clock: { clock.now })
    }

    /// `long` requests that waited 20 ms and `short` ones that waited 1 ms arrive and are handled one after the other,
    /// each in the queue for an equal share of `busy` milliseconds (so the queue is busy that long, plus whatever
    /// else waits meanwhile); with `busy` 0 the clock does not move.
    static func handle(_ d: OverloadDetector, _ clock: ManualClock, long: Int, short: Int, busy: UInt64 = 0) {
        let n = long + short
        for i in 0..<n {
            d.arrived()
            clock.advance(nanoseconds: busy * ms / UInt64(n))
            d.handled(waited: i < long ? 20 * ms : 1 * ms, now: clock.now)
        }
    }

    /// Makes `count` requests wait in the queue.
    static func wait(_ d: OverloadDetector, _ count: Int) { for _ in 0..<count { d.arrived() } }

    @Test func theQueueStandsFromAnIntervalWhereAtLeastTheShareOfRequestsWaitedLong() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        Self.wait(d, 1000)
        // 9 long waits of 20: under half.
        Self.handle(d, clock, long: 9, short: 11)
        clock.advance(milliseconds: 100)
        #expect(!d.shouldShed(now: clock.now))
        #expect(!d.standing)
        // 10 of 20: half, so it stands; 20 handled in 100 ms drain 1 in 5 ms, so 1 waiting is enough to shed.
        Self.handle(d, clock, long: 10, short: 10)
        clock.advance(milliseconds: 100)
        #expect(d.shouldShed(now: clock.now))
        #expect(d.standing)
        #expect(d.shedBound == 1)
    }

    @Test func tooFewRequestsInAnIntervalNeverMakeItStand() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        Self.wait(d, 1000)
        Self.handle(d, clock, long: 9, short: 0)
        clock.advance(milliseconds: 100)
        #expect(!d.shouldShed(now: clock.now))
        #expect(!d.standing)
    }

    @Test func whileItStandsARequestIsShedOnlyWhenTheWaitingOnesWouldTakeTheTargetToDrain() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        // 320 handled in 80 busy ms (then 20 ms with nothing waiting): 4 per busy ms, so 20 drain in the 5 ms target.
        Self.handle(d, clock, long: 320, short: 0, busy: 80)
        clock.advance(milliseconds: 20)
        Self.wait(d, 19)
        #expect(!d.shouldShed(now: clock.now), "19 waiting drain in 4.75 ms")
        #expect(d.shedBound == 20)
        Self.wait(d, 1)
        #expect(d.shouldShed(now: clock.now), "20 waiting take the whole 5 ms")
        #expect(d.waiting == 20, "a shed request does not join the queue")
        // A drain that is really slower lowers it: the 20 keep waiting through the next interval, busy all of its
        // 100 ms, in which 180 were handled: 1.8 per busy ms, 9 drain in 5 ms.
        Self.handle(d, clock, long: 180, short: 0, busy: 90)
        clock.advance(milliseconds: 10)
        #expect(d.shouldShed(now: clock.now))
        #expect(d.shedBound == 9)
        // A rate that rises raises it at once: 720 in 100 busy ms drain 36 in 5 ms.
        Self.handle(d, clock, long: 720, short: 0, busy: 90)
        clock.advance(milliseconds: 10)
        #expect(!d.shouldShed(now: clock.now), "20 waiting, bound 36")
        #expect(d.shedBound == 36)
    }

    @Test func theBoundDoesNotFallWhenSheddingLeavesTheQueueEmptyPartOfAnInterval() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        // 400 handled in 80 busy ms: 5 per busy ms, 25 drain in 5 ms.
        Self.handle(d, clock, long: 400, short: 0, busy: 80)
        clock.advance(milliseconds: 20)
        Self.wait(d, 25)
        #expect(d.shouldShed(now: clock.now))
        #expect(d.shedBound == 25)
        // The shedding empties the queue: the 25 waiting are handled in 5 ms, then nothing waits for 95 ms. The
        // interval handled 25 requests in 100 ms (handled rate times target: 25 * 5 / 100 = 1), but in 5 busy ms: 5
        // per busy ms, so the bound stays 25.
        for _ in 0..<25 {
            clock.advance(nanoseconds: 200_000)
            d.handled(waited: 1 * Self.ms, now: clock.now)
        }
        clock.advance(milliseconds: 95)
        #expect(!d.shouldShed(now: clock.now), "nothing waits")
        #expect(d.standing, "it shed in the interval")
        #expect(d.shedBound == 25)
        // Again: 50 waiting are shed from, handled in 10 busy ms, then nothing waits for 90 ms: 50 in 100 ms would be
        // a bound of 2, but 50 in 10 busy ms keep it 25.
        Self.wait(d, 50)
        #expect(d.shouldShed(now: clock.now))
        for _ in 0..<50 {
            clock.advance(nanoseconds: 200_000)
            d.handled(waited: 1 * Self.ms, now: clock.now)
        }
        clock.advance(milliseconds: 90)
        #expect(!d.shouldShed(now: clock.now))
        #expect(d.shedBound == 25)
    }

    @Test func sheddingHoldsTheQueueStandingAndAQuietIntervalEndsIt() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        // 100 handled in 80 busy ms: 6.25 per 5 ms, bound 6.
        Self.handle(d, clock, long: 100, short: 0, busy: 80)
        clock.advance(milliseconds: 20)
        Self.wait(d, 50)
        #expect(d.shouldShed(now: clock.now))
        // Shedding holds the waits short, but it was needed: the queue still stands.
        d.dropped(50)
        Self.handle(d, clock, long: 0, short: 100)
        clock.advance(milliseconds: 100)
        #expect(!d.shouldShed(now: clock.now), "nothing waits")
        #expect(d.standing)
        // An interval of short waits and no shedding: it ends, and even a long line is admitted.
        Self.handle(d, clock, long: 0, short: 100)
        clock.advance(milliseconds: 100)
        Self.wait(d, 1000)
        #expect(!d.shouldShed(now: clock.now))
        #expect(!d.standing)
        #expect(d.shedBound == 0)
    }

    @Test func aBurstThatHasAlreadyDrainedIsNotShed() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        // A burst: 30 requests at once, most of them waited long; by the end of the interval all were handled.
        Self.handle(d, clock, long: 28, short: 2)
        clock.advance(milliseconds: 100)
        #expect(!d.shouldShed(now: clock.now))
        #expect(d.standing)
        #expect(d.waiting == 0)
        // They left the queue the instant they joined (no busy time): busy time counts as the 5 ms target, so the
        // bound is the 30 handled.
        #expect(d.shedBound == 30)
    }

    @Test func eachRequestLeavesTheQueueOnceHandledOrDropped() {
        let clock = ManualClock()
        let d = Self.detector(clock)
        let a = ConnectionQueue(detector: d), b = ConnectionQueue(detector: d)
        a.joined(); a.joined(); a.joined()
        b.joined()
        #expect(d.waiting == 4)
        #expect(a.handled(waited: 1 * Self.ms))
        #expect(d.waiting == 3)
        // a closes with two requests never handled: they leave once, however often it is told.
        a.abandon()
        a.abandon()
        #expect(d.waiting == 1)
        // A request of a that its task still picks up after the close was counted as dropped already.
        #expect(!a.handled(waited: 1 * Self.ms))
        #expect(d.waiting == 1)
        #expect(b.handled(waited: 1 * Self.ms))
        #expect(d.waiting == 0)
    }

    @Test func concurrentJoinsAndLeavesBalance() async {
        let clock = ManualClock()
        let d = Self.detector(clock)
        await withTaskGroup(of: Void.self) { group in
            for c in 0..<8 {
                group.addTask {
                    let q = ConnectionQueue(detector: d)
                    for i in 0..<2000 {
                        q.joined()
                        if (i + c) % 7 == 0 { q.abandon() } else { q.handled(waited: 0) }
                        _ = d.shouldShed(now: clock.now)
                    }
                    q.abandon()
                }
            }
        }
        #expect(d.waiting == 0)
    }
}
