import Foundation
import Hummingbird
import Prometheus
import EncoreCore
import EncoreServing

/// The server's Prometheus metrics, in a registry of its own (no process-wide bootstrap, so several servers, as in
/// the tests, keep separate counts).
///
/// - `encore_http_requests_total{route,method,status}` and `encore_http_request_duration_seconds{route,method}`
///   (histogram) per matched route;
/// - `encore_http_requests_shed_total{reason}` (`in_flight`, or `queue_delay`: shed by the connection guard while a
///   queue stands), `encore_http_in_flight`, `encore_http_queue_delay_seconds` (histogram: from a request's head
///   arriving to its handling), `encore_http_requests_waiting` (decoded, not yet handled) and
///   `encore_http_queue_standing` (1 while the overload detector sheds) and `encore_http_shed_bound` (the waiting
///   count from which it sheds, 0 while no queue stands), the last three with an overload detector;
/// - `encore_http_connections`, `encore_http_connections_refused_total`,
///   `encore_http_connections_timed_out_total{phase}` (`idle`, `header`, `body`), `encore_http_parse_errors_total`;
/// - `encore_events_applied_total`, `encore_events_duplicate_total`, `encore_events_replayed`,
///   `encore_event_log_fsyncs_total`;
/// - `encore_active_users` (users with state in memory), `encore_realtime_users_max` (the bound),
///   `encore_realtime_user_evictions_total`, `encore_realtime_user_rebuilds_total`, `encore_seen_event_ids`,
///   `encore_seen_event_ids_forgotten_total`;
/// - `encore_posted_tracks` (tracks posted since the bundle and served), `encore_posted_new_tracks` (those the bundle
///   does not have);
/// - `encore_bundle_info{version}` (1), `encore_bundle_created_seconds`, `encore_bundle_loaded_seconds`,
///   `encore_bundle_reloads_total`, `encore_bundle_reload_failures_total`, `encore_active_users`,
///   `encore_event_log_last_sequence`;
/// - `encore_bundle_index_loaded{role}` (1 when the role's index is loaded, 0 when it is served by exact search) and
///   `encore_bundle_index_warnings` (index roles expected but missing, mismatched or unreadable);
/// - `encore_build_info{version}` (1): the Encore library version of the server.
public final class ServeMetrics: Sendable {
    /// The registry `/metrics` emits.
    public let registry = PrometheusCollectorRegistry()
    let shedInFlight: Counter
    let shedQueueDelay: Counter
    let inFlight: Gauge
    let queueDelay: DurationHistogram
    let connectionsOpen: Gauge
    let connectionsRefused: Counter
    let parseErrors: Counter
    static let buckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1), .seconds(5),
    ]
    private let lastBundle = Locked<String?>(nil)
    /// The overload detector whose state `/metrics` shows.
    private let overload = Locked<OverloadDetector?>(nil)
    /// The engine totals already added to the `*_total` counters, by metric name.
    private let exportedTotals = Locked<[String: Int]>([:])

    /// The descriptor of a metric, with its help text.
    static func d(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: help[name] ?? "")
    }

    static let help: [String: String] = [
        "encore_http_requests_total": "HTTP requests by matched route, method and status.",
        "encore_http_request_duration_seconds": "HTTP request latency by matched route and method.",
        "encore_http_requests_shed_total": "Requests refused with 503: too many in flight, or shed before their handler while a queue stands.",
        "encore_http_requests_waiting": "Requests decoded and not yet handled (the overload detector's queue).",
        "encore_http_queue_standing": "1 while the overload detector says a queue stands (requests are shed), else 0.",
        "encore_http_shed_bound": "Requests waiting from which a new one is shed while a queue stands (0 while none stands).",
        "encore_http_in_flight": "Requests being served.",
        "encore_http_queue_delay_seconds": "Time from a request head's arrival to its handling.",
        "encore_http_connections": "Open HTTP connections.",
        "encore_http_connections_refused_total": "Connections answered 503 and closed because the connection limit was reached.",
        "encore_http_connections_timed_out_total": "Connections closed by the idle, header-read or body-read timeout.",
        "encore_http_parse_errors_total": "Requests the HTTP parser refused (malformed, or headers too large).",
        "encore_events_applied_total": "Events applied to the real-time state (replayed ones included).",
        "encore_events_duplicate_total": "Events refused as duplicates of an earlier event_id.",
        "encore_events_replayed": "Log records replayed into the current state at start or reload.",
        "encore_bundle_info": "1 for the bundle version being served.",
        "encore_bundle_created_seconds": "The served bundle's created_at, Unix seconds.",
        "encore_bundle_loaded_seconds": "When the served bundle was loaded, Unix seconds.",
        "encore_bundle_reloads_total": "Successful bundle reloads.",
        "encore_bundle_reload_failures_total": "Failed bundle reloads.",
        "encore_active_users": "Users with real-time state in memory.",
        "encore_posted_tracks": "Tracks posted since the bundle (POST /v1/tracks, replayed from the journal) and served.",
        "encore_posted_new_tracks": "Posted tracks the bundle does not have.",
        "encore_realtime_users_max": "The most users whose real-time state is kept in memory (0: no bound).",
        "encore_realtime_user_evictions_total": "Users whose real-time state was dropped from memory (rebuilt from the log when they return).",
        "encore_realtime_user_rebuilds_total": "Users whose real-time state was rebuilt from the log after an eviction.",
        "encore_seen_event_ids": "Event ids remembered to refuse duplicates.",
        "encore_seen_event_ids_forgotten_total": "Event ids the duplicate check forgot (its bound).",
        "encore_event_log_fsyncs_total": "fsyncs of appended events (one per group commit).",
        "encore_event_log_last_sequence": "The last sequence in the event log.",
        "encore_bundle_index_loaded": "1 when the index of the role is loaded, 0 when the role is served by exact search.",
        "encore_bundle_index_warnings": "Index files expected with the bundle but missing, mismatched or unreadable.",
        "encore_build_info": "1 for the Encore version of the server.",
    ]

    /// A registry with the server's metrics.
    public init() {
        shedInFlight = registry.makeCounter(descriptor: Self.d("encore_http_requests_shed_total"), labels: [("reason", "in_flight")])
        shedQueueDelay = registry.makeCounter(descriptor: Self.d("encore_http_requests_shed_total"), labels: [("reason", "queue_delay")])
        inFlight = registry.makeGauge(descriptor: Self.d("encore_http_in_flight"), labels: [])
        queueDelay = registry.makeDurationHistogram(descriptor: Self.d("encore_http_queue_delay_seconds"), labels: [], buckets: Self.buckets)
        connectionsOpen = registry.makeGauge(descriptor: Self.d("encore_http_connections"), labels: [])
        connectionsRefused = registry.makeCounter(descriptor: Self.d("encore_http_connections_refused_total"), labels: [])
        parseErrors = registry.makeCounter(descriptor: Self.d("encore_http_parse_errors_total"), labels: [])
        registry.makeGauge(descriptor: Self.d("encore_build_info"), labels: [("version", Encore.version)]).set(1.0)
    }

    /// Shows `detector`'s queue in the rendered metrics.
    func observe(_ detector: OverloadDetector) { overload.withLock { $0 = detector } }

    /// Counts a connection closed by a timeout of `phase` (`idle`, `header` or `body`).
    func connectionTimedOut(phase: String) {
        registry.makeCounter(descriptor: Self.d("encore_http_connections_timed_out_total"), labels: [("phase", phase)]).increment()
    }

    /// Records one finished request.
    func record(route: String, method: String, status: Int, seconds: Double) {
        registry.makeCounter(descriptor: Self.d("encore_http_requests_total"), labels: [("route", route), ("method", method), ("status", "\(status)")])
            .increment()
        registry.makeDurationHistogram(
            descriptor: Self.d("encore_http_request_duration_seconds"), labels: [("route", route), ("method", method)], buckets: Self.buckets)
            .record(Duration.nanoseconds(Int64(seconds * 1e9)))
    }

    /// Updates the counters and gauges read from the engine (every `*_total` is a counter), then renders the
    /// exposition text.
    func render(engine: RealtimeEngine?) -> [UInt8] {
        if let detector = overload.withLock({ $0 }) {
            registry.makeGauge(descriptor: Self.d("encore_http_requests_waiting"), labels: []).set(Double(detector.waiting))
            registry.makeGauge(descriptor: Self.d("encore_http_queue_standing"), labels: []).set(detector.standing ? 1.0 : 0.0)
            registry.makeGauge(descriptor: Self.d("encore_http_shed_bound"), labels: []).set(Double(detector.shedBound))
        }
        if let engine {
            let s = engine.statistics
            let m = engine.model
            // The engine counts since the process started; the counters advance by what is new since the last scrape.
            let totals = ["encore_events_applied_total": s.eventsApplied, "encore_events_duplicate_total": s.duplicates,
                          "encore_bundle_reloads_total": s.reloads, "encore_bundle_reload_failures_total": s.reloadFailures,
                          "encore_realtime_user_evictions_total": s.userEvictions, "encore_realtime_user_rebuilds_total": s.userRebuilds,
                          "encore_seen_event_ids_forgotten_total": s.seenEventIDsForgotten,
                          "encore_event_log_fsyncs_total": engine.eventLogFsyncs]
            exportedTotals.withLock { exported in
                for (name, value) in totals {
                    let counter = registry.makeCounter(descriptor: Self.d(name), labels: [])
                    let delta = value - exported[name, default: 0]
                    if delta > 0 { counter.increment(by: Int64(delta)) }
                    exported[name] = max(value, exported[name, default: 0])
                }
            }
            registry.makeGauge(descriptor: Self.d("encore_events_replayed"), labels: []).set(Double(s.replayed))
            registry.makeGauge(descriptor: Self.d("encore_active_users"), labels: []).set(Double(engine.activeUsers))
            let live = engine.liveCatalog
            registry.makeGauge(descriptor: Self.d("encore_posted_tracks"), labels: []).set(Double(live.count))
            registry.makeGauge(descriptor: Self.d("encore_posted_new_tracks"), labels: []).set(Double(live.newTrackCount))
            registry.makeGauge(descriptor: Self.d("encore_realtime_users_max"), labels: []).set(Double(engine.maxUsers))
            registry.makeGauge(descriptor: Self.d("encore_seen_event_ids"), labels: []).set(Double(engine.seenEventIDs))
            registry.makeGauge(descriptor: Self.d("encore_event_log_last_sequence"), labels: []).set(Double(engine.lastSequence))
            registry.makeGauge(descriptor: Self.d("encore_bundle_created_seconds"), labels: []).set(Double(m.createdAtMs ?? 0) / 1000)
            registry.makeGauge(descriptor: Self.d("encore_bundle_loaded_seconds"), labels: []).set(m.loadedAt)
            for status in m.indexStatus {
                registry.makeGauge(descriptor: Self.d("encore_bundle_index_loaded"), labels: [("role", status.role)])
                    .set(status.state == .loaded ? 1.0 : 0.0)
            }
            registry.makeGauge(descriptor: Self.d("encore_bundle_index_warnings"), labels: [])
                .set(Double(m.indexStatus.filter(\.isWarning).count))
            let previous = lastBundle.withLock { old -> String? in
                defer { old = m.version }
                return old
            }
            if let previous, previous != m.version {
                registry.makeGauge(descriptor: Self.d("encore_bundle_info"), labels: [("version", previous)]).set(0.0)
            }
            registry.makeGauge(descriptor: Self.d("encore_bundle_info"), labels: [("version", m.version)]).set(1.0)
        }
        return registry.emitToBuffer()
    }
}
