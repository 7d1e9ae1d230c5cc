import Synchronization

/// Watches the queue between the event loop, where a request's head is decoded, and the task that handles it, and
/// decides which new requests to shed before they join it (``ConnectionGuardHandler`` asks at every request head).
///
/// Three signals, all kept in atomics (no lock on the request path):
/// - the count of requests decoded but not yet handled (``waiting``), fresh at every decision;
/// - per `interval`, how many requests were handled and how many of them had waited `target` or more;
/// - per `interval`, the *busy* time: how long at least one request was waiting.
///
/// The queue *stands* from the end of an interval in which at least `minimumRequests` requests were handled and at
/// least `longShare` of them had waited `target` or more; it keeps standing through an interval in which requests
/// were shed (the shedding is what holds the waits down) and ends after an interval with neither. While it stands,
/// a new request is shed when the requests already waiting would take `target` or more to drain at the rate the
/// queue drained in the last interval *while it was busy* (the bound: requests handled per busy second times
/// `target`, at least 1; busy time counts as at least `target`). Shedding that leaves the queue empty part of an
/// interval lowers the handled count and the busy time together, so it does not lower the bound; only a slower
/// drain does. So the waiting of admitted requests stays near `target`, a burst that has already drained is not
/// shed, and shedding ends once the requests waiting stay under the bound for an interval.
public final class OverloadDetector: Sendable {
    /// The wait that counts as long, and what the waiting requests may take to drain while the queue stands.
    public let target: Duration
    /// How often the share of long waits is taken.
    public let interval: Duration
    /// The share of long waits in an interval (0...1) from which the queue stands.
    public let longShare: Double
    /// The fewest requests handled in an interval for its share of long waits to count.
    public let minimumRequests: Int

    private let targetNanoseconds: UInt64
    private let intervalNanoseconds: UInt64
    private let clock: @Sendable () -> UInt64
    private let waitingCount = Atomic<Int>(0)
    private let windowStart: Atomic<UInt64>
    private let windowHandled = Atomic<Int>(0)
    private let windowLong = Atomic<Int>(0)
    private let windowShed = Atomic<Int>(0)
    /// Nanoseconds of the current interval during which at least one request was waiting.
    private let windowBusy = Atomic<UInt64>(0)
    /// When the last event (a decision, an arrival, a departure) was seen; the time since it is busy when a request
    /// was waiting through it.
    private let lastEvent: Atomic<UInt64>
    /// How many requests may be waiting before a new one is shed; 0 while the queue does not stand.
    private let bound = Atomic<Int>(0)

    /// The default share of long waits from which the queue stands.
    public static let defaultLongShare = 0.5
    /// The default fewest requests per interval for a share to count.
    public static let defaultMinimumRequests = 10

    /// A detector on the monotonic clock; `target` and `interval` must be positive, `longShare` in 0...1.
    public convenience init(target: Duration, interval: Duration, longShare: Double = OverloadDetector.defaultLongShare,
                            minimumRequests: Int = OverloadDetector.defaultMinimumRequests) {
        self.init(target: target, interval: interval, longShare: longShare, minimumRequests: minimumRequests,
                  clock: monotonicNanoseconds)
    }

    /// A detector whose intervals follow `clock` (nanoseconds).
    init(target: Duration, interval: Duration, longShare: Double, minimumRequests: Int, clock: @escaping @Sendable () -> UInt64) {
        self.target = target
        self.interval = interval
        self.longShare = min(max(longShare, 0), 1)
        self.minimumRequests = max(minimumRequests, 1)
        targetNanoseconds = Self.nanoseconds(target)
        intervalNanoseconds = max(Self.nanoseconds(interval), 1)
        self.clock = clock
        let start = clock()
        windowStart = Atomic(start)
        lastEvent = Atomic(start)
    }

    static func nanoseconds(_ d: Duration) -> UInt64 {
        let c = d.components
        return UInt64(clamping: c.seconds) &* 1_000_000_000 &+ UInt64(clamping: c.attoseconds / 1_000_000_000)
    }

    /// The detector's clock, in nanoseconds.
    func now() -> UInt64 { clock() }

    /// `target` in milliseconds, for messages.
    var targetMilliseconds: String {
        let ms = Double(targetNanoseconds) / 1e6
        return ms == ms.rounded() ? String(Int(ms)) : String(ms)
    }

    /// Requests decoded and not yet handled.
    public var waiting: Int { waitingCount.load(ordering: .relaxed) }

    /// Whether the queue stands (new requests are shed once ``shedBound`` of them are waiting).
    public var standing: Bool { bound.load(ordering: .relaxed) > 0 }

    /// How many waiting requests make a new one shed while the queue stands (0 while it does not).
    public var shedBound: Int { bound.load(ordering: .relaxed) }

    /// Whether a request whose head was decoded at `now` is shed instead of joining the queue (counted as shed when
    /// it is).
    func shouldShed(now: UInt64) -> Bool {
        elapse(to: now, busy: waitingCount.load(ordering: .relaxed) > 0)
        roll(now: now)
        let limit = bound.load(ordering: .relaxed)
        guard limit > 0, waitingCount.load(ordering: .relaxed) >= limit else { return false }
        windowShed.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// A request joined the queue.
    func arrived() {
        elapse(to: clock(), busy: waitingCount.load(ordering: .relaxed) > 0)
        waitingCount.wrappingAdd(1, ordering: .relaxed)
    }

    /// A request left the queue at `now` to be handled, after waiting `waited` nanoseconds.
    func handled(waited: UInt64, now: UInt64) {
        elapse(to: now, busy: true)
        roll(now: now)
        waitingCount.wrappingSubtract(1, ordering: .relaxed)
        windowHandled.wrappingAdd(1, ordering: .relaxed)
        if waited >= targetNanoseconds { windowLong.wrappingAdd(1, ordering: .relaxed) }
    }

    /// `count` requests left the queue without being handled (their connection closed).
    func dropped(_ count: Int) {
        elapse(to: clock(), busy: true)
        waitingCount.wrappingSubtract(count, ordering: .relaxed)
    }

    /// Moves the last event's time to `now` (never back) and counts the time between as busy when a request was
    /// waiting through it.
    private func elapse(to now: UInt64, busy: Bool) {
        var last = lastEvent.load(ordering: .relaxed)
        while now > last {
            let (exchanged, original) = lastEvent.compareExchange(expected: last, desired: now, ordering: .relaxed)
            if exchanged {
                if busy { windowBusy.wrappingAdd(now - last, ordering: .relaxed) }
                return
            }
            last = original
        }
    }

    /// Closes the interval when `now` is past its end: whoever sees it first takes the interval's counts and sets
    /// the bound for the next one.
    private func roll(now: UInt64) {
        let start = windowStart.load(ordering: .acquiring)
        guard now >= start, now - start >= intervalNanoseconds else { return }
        guard windowStart.compareExchange(expected: start, desired: now, ordering: .acquiringAndReleasing).exchanged else { return }
        let handled = windowHandled.exchange(0, ordering: .acquiringAndReleasing)
        let long = windowLong.exchange(0, ordering: .acquiringAndReleasing)
        let shed = windowShed.exchange(0, ordering: .acquiringAndReleasing)
        let busy = windowBusy.exchange(0, ordering: .acquiringAndReleasing)
        let wasStanding = bound.load(ordering: .relaxed) > 0
        let manyLong = handled >= minimumRequests && Double(long) >= longShare * Double(handled)
        guard manyLong || (wasStanding && shed > 0) else {
            bound.store(0, ordering: .releasing)
            return
        }
        // What drains in `target` at the rate the queue drained while it was busy: requests handled per busy
        // nanosecond times the target. Busy time is clamped to the interval and taken as at least the target (a
        // queue that stood had requests waiting that long), so a few requests in a sliver of busy time do not make
        // the bound unbounded.
        let busyTime = max(min(busy, now - start), max(targetNanoseconds, 1))
        let (product, overflow) = UInt64(max(handled, 0)).multipliedReportingOverflow(by: targetNanoseconds)
        let drains = overflow ? Int.max : Int(clamping: product / busyTime)
        bound.store(max(1, drains), ordering: .releasing)
    }
}

/// The requests of one connection that joined an ``OverloadDetector``'s queue and have not left it, so that each
/// leaves exactly once: handled (``handled(waited:)``, from the request's task) or dropped when the connection
/// closes first (``abandon()``, from its event loop).
final class ConnectionQueue: Sendable {
    let detector: OverloadDetector
    private let unclaimed = Atomic<Int>(0)

    init(detector: OverloadDetector) { self.detector = detector }

    /// A request of this connection joined the queue.
    func joined() {
        unclaimed.wrappingAdd(1, ordering: .relaxed)
        detector.arrived()
    }

    /// A request of this connection is being handled after waiting `waited` nanoseconds; false (and nothing counted)
    /// when the connection already gave its requests up.
    @discardableResult
    func handled(waited: UInt64) -> Bool {
        var current = unclaimed.load(ordering: .relaxed)
        while current > 0 {
            let (exchanged, original) = unclaimed.compareExchange(expected: current, desired: current - 1, ordering: .relaxed)
            if exchanged {
                detector.handled(waited: waited, now: detector.now())
                return true
            }
            current = original
        }
        return false
    }

    /// The connection closed: its requests not yet handled leave the queue (once).
    func abandon() {
        let left = unclaimed.exchange(0, ordering: .relaxed)
        if left > 0 { detector.dropped(left) }
    }
}
