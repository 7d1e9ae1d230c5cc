import Foundation
import Hummingbird
import NIOCore
import ServiceLifecycle
#if canImport(Glibc)
import Glibc
#endif

/// A blocking TCP client on loopback, for what an HTTP client library will not do: send half a request, stay
/// silent, hold a connection open, send a URL of 100 KB. Every read waits at most `readTimeout` seconds.
final class RawSocket: @unchecked Sendable {
    let fd: Int32

    /// An HTTP response as read off the wire.
    struct Response: Sendable {
        var status: Int
        var headers: [String: String]
        var body: String
    }

    enum Failure: Error, CustomStringConvertible {
        case system(String, Int32)
        var description: String {
            switch self { case .system(let call, let e): return "\(call) failed: \(String(cString: strerror(e)))" }
        }
    }

    init(port: Int, readTimeout: Double = 15) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure.system("socket", errno) }
        var tv = timeval(tv_sec: Int(readTimeout), tv_usec: Int((readTimeout - readTimeout.rounded(.down)) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw Failure.system("connect", e)
        }
    }

    private var open = true

    deinit { close() }

    /// Closes the socket (once).
    func close() {
        if open { Glibc.close(fd) }
        open = false
    }

    /// Sends all of `text`; false when the peer has closed.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Whether something can be read now (an answer, or the peer's close).
    func readable() -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }

    /// Reads until the peer closes (true) or a read times out (false); returns what was read.
    func readUntilClosed() -> (bytes: [UInt8], closed: Bool) {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { out += buffer[0..<n]; continue }
            if n == 0 { return (out, true) }
            if errno == EINTR { continue }
            return (out, errno == ECONNRESET)
        }
    }

    /// Reads one response (its body by `Content-Length`); `nil` when the connection closes or times out first.
    func readResponse() -> Response? {
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var headEnd: Int?
        var needed = Int.max
        while data.count < needed {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 {
                if n < 0 && errno == EINTR { continue }
                return nil
            }
            data += buffer[0..<n]
            if headEnd == nil, let r = Self.find([13, 10, 13, 10], in: data) {
                headEnd = r + 4
                let head = Self.parseHead(Array(data[0..<r]))
                needed = r + 4 + (Int(head.headers["content-length"] ?? "0") ?? 0)
            }
        }
        guard let headEnd else { return nil }
        var response = Self.parseHead(Array(data[0..<(headEnd - 4)]))
        response.body = String(decoding: data[headEnd..<needed], as: UTF8.self)
        return response
    }

    /// Parses what `readUntilClosed` returned as one response (`nil` when there is none).
    static func parse(_ bytes: [UInt8]) -> Response? {
        guard let r = find([13, 10, 13, 10], in: bytes) else { return nil }
        var response = parseHead(Array(bytes[0..<r]))
        response.body = String(decoding: bytes[(r + 4)...], as: UTF8.self)
        return response
    }

    private static func parseHead(_ bytes: [UInt8]) -> Response {
        let lines = String(decoding: bytes, as: UTF8.self).components(separatedBy: "\r\n")
        let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return Response(status: status, headers: headers, body: "")
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where Array(haystack[i..<(i + needle.count)]) == needle { return i }
        return nil
    }
}

/// Threads of their own for live servers under test. The test runner's other tests run synchronous work (child
/// processes waited for, seconds of CPU) on the cooperative pool, which has one thread per core: a server whose
/// handlers queued behind them could not answer for longer than any client timeout. Tasks started in
/// ``onServerThreads(_:)`` and their child tasks (Hummingbird handles each connection in a child task) run here.
final class ServerThreads: TaskExecutor, @unchecked Sendable {
    /// The pool every live server in these tests shares.
    static let shared = ServerThreads(threads: 4)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for i in 0..<threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "server-test-\(i)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

/// Runs `body` (and the tasks it starts in task groups) on ``ServerThreads/shared`` instead of the cooperative pool.
func onServerThreads<T: Sendable>(_ body: () async throws -> T) async throws -> T {
    try await withTaskExecutorPreference(ServerThreads.shared, operation: body)
}

/// Runs the application `make` builds (it must listen on 127.0.0.1, port 0, and call the closure it is given from
/// its `onServerRunning`) with no other client, on ``ServerThreads``, calls `body` with its port, then shuts it
/// down gracefully.
func withLiveServer<App: ApplicationProtocol>(
    _ make: (@escaping @Sendable (any Channel) async -> Void) -> App, _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    try await onServerThreads { try await runLiveServer(make, body) }
}

private func runLiveServer<App: ApplicationProtocol>(
    _ make: (@escaping @Sendable (any Channel) async -> Void) -> App, _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    let (ports, continuation) = AsyncStream<Int>.makeStream()
    let app = make { channel in continuation.yield(channel.localAddress?.port ?? 0) }
    let serviceGroup = ServiceGroup(configuration: .init(services: [app], logger: app.logger))
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await serviceGroup.run() }
        var port = 0
        for await p in ports { port = p; break }
        do {
            try await body(port)
        } catch {
            await serviceGroup.triggerGracefulShutdown()
            throw error
        }
        await serviceGroup.triggerGracefulShutdown()
        try await group.waitForAll()
    }
}

/// Runs blocking socket work on a thread of its own, off the cooperative pool the server under test runs on (and
/// off Dispatch's global queues, which Linux sizes to the core count).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            do { continuation.resume(returning: try body()) } catch { continuation.resume(throwing: error) }
        }
        thread.start()
    }
}

/// Runs `count` blocking bodies at once, each on a thread of its own; their results in order.
func concurrently<T: Sendable>(_ count: Int, _ body: @escaping @Sendable (Int) throws -> T) async throws -> [T] {
    try await withThrowingTaskGroup(of: (Int, T).self) { group in
        for i in 0..<count { group.addTask { (i, try await blocking { try body(i) }) } }
        var out = [T?](repeating: nil, count: count)
        for try await (i, value) in group { out[i] = value }
        return out.compactMap { $0 }
    }
}
