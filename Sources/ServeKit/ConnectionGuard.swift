import EncoreCore
import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The limits a connection lives under: how long a client may stay silent or take to send a request, and how many
/// connections are served at once.
public struct ConnectionLimits: Sendable {
    /// How long a kept-alive connection may wait for the first byte of its next request before it is closed.
    public var idleTimeout: Duration
    /// How long a client has to send a whole request head: from its first byte, or from the connection's opening for
    /// the first request. Past it, 408 and the connection is closed.
    public var headerTimeout: Duration
    /// How long a client has to send a whole request body, from the end of its head. Past it, 408 and the
    /// connection is closed.
    public var bodyTimeout: Duration
    /// The most connections open at once; one more is answered 503 with `Retry-After` and closed (0: no limit).
    public var maxConnections: Int
    /// The `Retry-After` of a refused connection and of a request shed by the guard, in seconds.
    public var retryAfterSeconds: Int
    /// The largest request line and header block, in bytes (431 above it).
    public var maxHeaderBytes: Int

    /// Limits.
    public init(idleTimeout: Duration = .seconds(60), headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(30),
                maxConnections: Int = 4096, retryAfterSeconds: Int = 1, maxHeaderBytes: Int = 16 * 1024) {
        self.idleTimeout = idleTimeout
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.maxConnections = maxConnections
        self.retryAfterSeconds = retryAfterSeconds
        self.maxHeaderBytes = maxHeaderBytes
    }
}

/// The header the connection guard stamps on every request head with the monotonic time (nanoseconds) its head was
/// decoded, so the handler's side can measure how long the request waited to be handled. A client's own value is
/// replaced.
let receivedAtHeader = HTTPField.Name("X-Encore-Received-At")!

/// The paths never shed (health, readiness and metrics), by the guard or by the in-flight limit.
enum NeverShed {
    /// Whether `target` (a request target: path and query) is one of them.
    static func contains(_ target: some StringProtocol) -> Bool {
        let path = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return path == "/health" || path == "/ready" || path == "/metrics"
    }
}

/// The monotonic clock of the connection guard and the load shedder, in nanoseconds.
func monotonicNanoseconds() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

/// Counts the open connections of one server.
final class ConnectionCounter: Sendable {
    private let count = Locked(0)

    /// Admits one more connection unless `limit` (> 0) are open.
    func admit(limit: Int) -> Bool {
        count.withLock { n in
            guard limit <= 0 || n < limit else { return false }
            n += 1
            return true
        }
    }

    func release() { count.withLock { $0 -= 1 } }

    var open: Int { count.withLock { $0 } }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 with Encore's connection guard: the timeouts and connection limit of `limits`, JSON bodies on the
    /// HTTP parser's own errors, each request's wait to be handled in `encore_http_queue_delay_seconds`, and, with
    /// `overload`, requests shed on the event loop (503 `overloaded` with `Retry-After`) while a queue stands.
    public static func encore(limits: ConnectionLimits, metrics: ServeMetrics, overload: OverloadDetector? = nil) -> HTTPServerBuilder {
        let counter = ConnectionCounter()
        if let overload { metrics.observe(overload) }
        return .init { responder in
            EncoreHTTP1Channel(responder: responder, limits: limits, metrics: metrics, counter: counter, overload: overload)
        }
    }
}

/// One connection of ``EncoreHTTP1Channel``: its async channel and its requests in the overload detector's queue.
struct EncoreConnection: ServerChildChannelValue {
    let asyncChannel: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>
    let queue: ConnectionQueue?
    var channel: any Channel { asyncChannel.channel }
}

/// Hummingbird's HTTP/1.1 child channel with ``ConnectionGuardHandler`` in its pipeline.
struct EncoreHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = EncoreConnection
    let responder: HTTPChannelHandler.Responder
    let limits: ConnectionLimits
    let metrics: ServeMetrics
    let counter: ConnectionCounter
    let overload: OverloadDetector?

    init(responder: @escaping HTTPChannelHandler.Responder, limits: ConnectionLimits, metrics: ServeMetrics, counter: ConnectionCounter,
         overload: OverloadDetector?) {
        self.responder = responder
        self.limits = limits
        self.metrics = metrics
        self.counter = counter
        self.overload = overload
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let clock = ConnectionPhase()
            let queue = overload.map { ConnectionQueue(detector: $0) }
            var decoderLimits = NIOHTTPDecoderLimitConfiguration()
            decoderLimits.maxHeaderListSize = limits.maxHeaderBytes
            decoderLimits.maxHeaderFieldSize = limits.maxHeaderBytes
            try channel.pipeline.syncOperations.addHandler(RawReadObserver(phase: clock, maxHeaderBytes: limits.maxHeaderBytes))
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(
                ConnectionGuardHandler(limits: limits, metrics: metrics, counter: counter, phase: clock, queue: queue))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
            return EncoreConnection(asyncChannel: asyncChannel, queue: queue)
        }
    }

    /// Serves the connection's requests; as each one starts to be handled, its wait since the guard stamped it is
    /// recorded and it leaves the overload detector's queue.
    func handle(value: EncoreConnection, logger: Logger) async {
        let inner = responder, metrics = metrics, queue = value.queue
        let measured: HTTPChannelHandler.Responder = { request, writer, channel in
            if let stamp = request.headers[receivedAtHeader].flatMap({ UInt64($0) }) {
                let now = monotonicNanoseconds()
                let waited = stamp <= now ? now - stamp : 0
                metrics.queueDelay.record(.nanoseconds(Int64(clamping: waited)))
                queue?.handled(waited: waited)
            }
            try await inner(request, writer, channel)
        }
        let connection = EncoreHTTP1Channel(responder: measured, limits: limits, metrics: metrics, counter: counter, overload: overload)
        await connection.handleHTTP(asyncChannel: value.asyncChannel, logger: logger)
    }
}

/// What a connection is doing, shared by the two handlers that watch it (both on the channel's event loop).
final class ConnectionPhase {
    /// When raw bytes of a request head started arriving (none since the last complete head: `nil`).
    var partialHeadSince: NIODeadline?
    /// Whether a request body is being read (between a head and its end), and since when.
    var bodySince: NIODeadline?
    /// Requests whose head arrived and whose response is not yet complete.
    var requestsOpen = 0
    /// Whether a response head went out for the request being read (reset when a new head starts with none open).
    var responseStarted = false
    /// Whether the connection has served a request yet.
    var fresh = true
    /// When the connection opened or its last response ended.
    var lastActivity = NIODeadline.now()
    /// Whether the request line of the head being read has ended (a line feed arrived since the head began).
    var requestLineDone = false
    /// The bytes of the head being read so far.
    var headBytes = 0
    /// Called when the first byte of a request head arrives (the guard re-arms its timer).
    var onHeadStart: (() -> Void)?
}

/// Notes when the bytes of a request head start arriving (before the HTTP decoder, which only speaks once a head is
/// whole), so a client dribbling a head is held to the header timeout rather than the idle one.
final class RawReadObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    let phase: ConnectionPhase
    let maxHeaderBytes: Int

    init(phase: ConnectionPhase, maxHeaderBytes: Int) {
        self.phase = phase
        self.maxHeaderBytes = maxHeaderBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if phase.bodySince == nil {
            if phase.partialHeadSince == nil {
                phase.partialHeadSince = .now()
                phase.requestLineDone = false
                phase.headBytes = 0
                if phase.requestsOpen == 0 { phase.responseStarted = false }
                phase.onHeadStart?()
            }
            if !phase.requestLineDone {
                // The request line ends within the header limit: an overflow is then the headers', not the URL's.
                let bytes = unwrapInboundIn(data).readableBytesView
                if let lf = bytes.firstIndex(of: 10), phase.headBytes + (lf - bytes.startIndex) < maxHeaderBytes {
                    phase.requestLineDone = true
                }
                phase.headBytes += bytes.count
            }
        }
        context.fireChannelRead(data)
    }
}

@available(*, unavailable) extension RawReadObserver: Sendable {}
@available(*, unavailable) extension ConnectionPhase: Sendable {}

/// Guards one connection: admits it under the connection limit (else 503 and close), closes it when a client is
/// idle, or slow to send a head or a body, past the limits (408 when a request was under way), answers the HTTP
/// parser's errors with the API's JSON error body, and stamps each request head with its arrival time.
///
/// With an overload detector it also sheds on the event loop, before the request is handed to its handler task:
/// when the detector says the queue stands and no earlier request of the connection is still open (responses keep
/// their order), a request head (other than health, readiness and metrics) is answered 503 `overloaded` with
/// `Retry-After` at once, its body is read and dropped, and it is never forwarded; the connection stays open unless
/// the request asked to close it or expects `100-continue`.
final class ConnectionGuardHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limits: ConnectionLimits
    let metrics: ServeMetrics
    let counter: ConnectionCounter
    let phase: ConnectionPhase
    let queue: ConnectionQueue?
    private var admitted = false
    /// Whether the request being read was shed: its body parts are dropped until its end.
    private var swallowing = false
    /// The 503 this connection sheds with (head and JSON body), made on the first shed and reused: a shed request
    /// must cost the event loop far less than an answer.
    private var shedResponse: (head: HTTPResponse, body: ByteBuffer)?
    private var decided = false
    private var closing = false
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?

    init(limits: ConnectionLimits, metrics: ServeMetrics, counter: ConnectionCounter, phase: ConnectionPhase, queue: ConnectionQueue? = nil) {
        self.limits = limits
        self.metrics = metrics
        self.counter = counter
        self.phase = phase
        self.queue = queue
    }

    func handlerAdded(context: ChannelHandlerContext) {
        phase.onHeadStart = { [unowned self] in self.reschedule(context) }
        if context.channel.isActive { admit(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        admit(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase.onHeadStart = nil
        cancelTimer()
        queue?.abandon()
        if admitted {
            admitted = false
            counter.release()
            metrics.connectionsOpen.decrement()
        }
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        phase.onHeadStart = nil
        cancelTimer()
        queue?.abandon()
    }

    private func admit(_ context: ChannelHandlerContext) {
        guard !decided else { return }
        decided = true
        guard counter.admit(limit: limits.maxConnections) else {
            metrics.connectionsRefused.increment()
            var headers = HTTPFields()
            headers[.retryAfter] = "\(limits.retryAfterSeconds)"
            respondAndClose(context, APIError(
                .serviceUnavailable, code: "too_many_connections",
                message: "the server is at its limit of \(limits.maxConnections) connections; retry later", headers: headers))
            return
        }
        admitted = true
        metrics.connectionsOpen.increment()
        phase.lastActivity = .now()
        reschedule(context)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        switch unwrapInboundIn(data) {
        case .head(var head):
            phase.partialHeadSince = nil
            phase.bodySince = .now()
            phase.fresh = false
            if let queue, phase.requestsOpen == 0, !NeverShed.contains(head.path ?? ""),
               queue.detector.shouldShed(now: queue.detector.now()) {
                shed(context, head, detector: queue.detector)
                return
            }
            phase.requestsOpen += 1
            phase.responseStarted = false
            head.headerFields[receivedAtHeader] = String(monotonicNanoseconds())
            queue?.joined()
            reschedule(context)
            context.fireChannelRead(wrapInboundOut(.head(head)))
        case .body:
            if swallowing { return }
            context.fireChannelRead(data)
        case .end:
            phase.bodySince = nil
            if swallowing {
                swallowing = false
                phase.lastActivity = .now()
                reschedule(context)
                return
            }
            reschedule(context)
            context.fireChannelRead(data)
        }
    }

    /// Answers a request head 503 `overloaded` without forwarding it; its body is dropped as it arrives.
    private func shed(_ context: ChannelHandlerContext, _ head: HTTPRequest, detector: OverloadDetector) {
        metrics.shedQueueDelay.increment()
        // Only the first shed of a connection (or a closing one) builds and encodes the error.
        func overloaded() -> APIError {
            var headers = HTTPFields()
            headers[.retryAfter] = "\(limits.retryAfterSeconds)"
            return APIError(.serviceUnavailable, code: "overloaded",
                            message: "requests are waiting more than \(detector.targetMilliseconds) ms to be handled; retry later",
                            headers: headers)
        }
        let bodyless = head.method == .head
        // A client that waits for 100-continue would never send the body this connection must read past: close.
        let close = head.headerFields[.connection].map { Self.hasToken("close", $0) } == true
            || head.headerFields[.expect].map { Self.hasToken("100-continue", $0) } == true
        phase.responseStarted = true
        if close {
            respondAndClose(context, overloaded(), bodyless: bodyless)
            return
        }
        swallowing = true
        let response = shedResponse ?? encoded(context, overloaded(), close: false)
        shedResponse = response
        context.write(wrapOutboundOut(.head(response.head)), promise: nil)
        if !bodyless { context.write(wrapOutboundOut(.body(response.body)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        reschedule(context)
    }

    /// Whether a comma-separated header value holds `token` (case-insensitive).
    static func hasToken(_ token: String, _ value: String) -> Bool {
        value.split(separator: ",").contains { $0.trimmingCharacters(in: .whitespaces).lowercased() == token }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200:
            phase.responseStarted = true
        case .end:
            phase.requestsOpen = max(0, phase.requestsOpen - 1)
            phase.lastActivity = .now()
            reschedule(context)
        default:
            break
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        metrics.parseErrors.increment()
        let apiError: APIError
        switch parse {
        case .headerOverflow where !phase.requestLineDone:
            apiError = APIError(.init(code: 414, reasonPhrase: "URI Too Long"), code: "uri_too_long",
                                message: "the request line is longer than \(limits.maxHeaderBytes) bytes")
        case .headerOverflow:
            apiError = APIError(.init(code: 431, reasonPhrase: "Request Header Fields Too Large"), code: "headers_too_large",
                                message: "the request line and headers are larger than \(limits.maxHeaderBytes) bytes")
        case .invalidContentLength, .unexpectedContentLength, .invalidChunkSize:
            apiError = APIError(.badRequest, code: "bad_request", message: "malformed request body framing (\(parse))")
        default:
            apiError = APIError(.badRequest, code: "bad_request", message: "malformed HTTP request (\(parse))")
        }
        // A shed request was answered already and its handler never saw it: close.
        if swallowing {
            close(context)
            return
        }
        // A body cut short must fail its reader, never read as a whole (Hummingbird ends a body when its stream ends).
        if phase.bodySince != nil { context.fireErrorCaught(error) }
        if phase.responseStarted && phase.requestsOpen > 0 {
            close(context)
        } else {
            respondAndClose(context, apiError)
        }
    }

    /// The earliest moment the connection must have made progress by, and the timeout that applies then.
    private func deadline() -> (NIODeadline, String)? {
        if let since = phase.bodySince { return (since + .init(limits.bodyTimeout), "body") }
        if phase.requestsOpen > 0 { return nil }
        if let since = phase.partialHeadSince { return (since + .init(limits.headerTimeout), "header") }
        if phase.fresh { return (phase.lastActivity + .init(limits.headerTimeout), "header") }
        return (phase.lastActivity + .init(limits.idleTimeout), "idle")
    }

    /// Arms the timer when the deadline is earlier than the armed one; a later deadline is checked when it fires.
    private func reschedule(_ context: ChannelHandlerContext) {
        guard admitted, !closing, let (when, _) = deadline() else { return }
        if let armed = timerDeadline, armed <= when, timer != nil { return }
        cancelTimer()
        timerDeadline = when
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: when) { [self] in
            timer = nil
            timerDeadline = nil
            fire(context)
        }
    }

    private func fire(_ context: ChannelHandlerContext) {
        guard admitted, !closing, let (when, kind) = deadline() else { return }
        guard when <= .now() else {
            reschedule(context)
            return
        }
        metrics.connectionTimedOut(phase: kind)
        if kind == "body" && !swallowing { context.fireErrorCaught(BodyTimeoutError(limit: limits.bodyTimeout)) }
        let underway = phase.partialHeadSince != nil || phase.bodySince != nil
        if underway && !phase.responseStarted {
            let what = kind == "body" ? "body" : "head"
            let limit = kind == "body" ? limits.bodyTimeout : limits.headerTimeout
            respondAndClose(context, APIError(.requestTimeout, code: "request_timeout",
                                              message: "the request \(what) did not arrive within \(limit)"))
        } else {
            close(context)
        }
    }

    /// Writes `error` as a whole response (no body for a HEAD request), with `Connection: close` when `close`; the
    /// returned future completes once it is flushed.
    @discardableResult
    private func write(_ context: ChannelHandlerContext, _ error: APIError, close: Bool, bodyless: Bool = false) -> EventLoopFuture<Void> {
        let response = encoded(context, error, close: close)
        context.write(wrapOutboundOut(.head(response.head)), promise: nil)
        if !bodyless { context.write(wrapOutboundOut(.body(response.body)), promise: nil) }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        return done.futureResult
    }

    /// `error` as a response head (JSON content type, its length, `Connection: close` when `close`) and body.
    private func encoded(_ context: ChannelHandlerContext, _ error: APIError, close: Bool) -> (head: HTTPResponse, body: ByteBuffer) {
        var fields = error.headers
        fields[.contentType] = "application/json; charset=utf-8"
        if close { fields[.connection] = "close" }
        let body = error.jsonBody
        fields[.contentLength] = "\(body.count)"
        return (HTTPResponse(status: error.status, headerFields: fields), context.channel.allocator.buffer(bytes: body))
    }

    private func respondAndClose(_ context: ChannelHandlerContext, _ error: APIError, bodyless: Bool = false) {
        closing = true
        cancelTimer()
        let done = write(context, error, close: true, bodyless: bodyless)
        // A lingering close: stop writing, keep reading (and discarding) for a moment, so a client still sending
        // reads the answer instead of a reset that would discard it.
        done.assumeIsolated().whenComplete { _ in
            context.close(mode: .output, promise: nil)
            context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(2)) { context.close(promise: nil) }
        }
    }

    private func close(_ context: ChannelHandlerContext) {
        closing = true
        cancelTimer()
        context.close(promise: nil)
    }

    private func cancelTimer() {
        timer?.cancel()
        timer = nil
        timerDeadline = nil
    }
}

@available(*, unavailable) extension ConnectionGuardHandler: Sendable {}

/// The error a request body's reader gets when the body timeout closes its connection.
struct BodyTimeoutError: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "the request body did not arrive within \(limit)" }
}
