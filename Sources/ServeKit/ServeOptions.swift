import Foundation
import EncoreData

/// The HTTP server's policies: authentication, body limit, the in-flight limit. (Shedding by queueing delay is the
/// connection guard's: `HTTPServerBuilder.encore(limits:metrics:overload:)`.)
public struct ServeOptions: Sendable {
    /// Bearer tokens accepted on write endpoints (and on reads with ``readAuth``). Empty: no authentication.
    public var tokens: Set<String>
    /// Whether reads need a token too (when tokens are configured).
    public var readAuth: Bool
    /// The largest request body accepted (413 above it).
    public var maxBodyBytes: Int
    /// The most events in one POST.
    public var maxEventsPerRequest: Int
    /// The most requests served at once; more are shed with 503 and `Retry-After` (0: no limit).
    public var maxInFlight: Int
    /// The `Retry-After` of a shed request, in seconds.
    public var retryAfterSeconds: Int
    /// The event rules; their plausibility window refuses events dated too far ahead of the server clock.
    public var eventRules: EventRules

    /// Options.
    public init(
        tokens: Set<String> = [], readAuth: Bool = false, maxBodyBytes: Int = 1 << 20, maxEventsPerRequest: Int = 1000,
        maxInFlight: Int = 512, retryAfterSeconds: Int = 1, eventRules: EventRules = .standard
    ) {
        self.eventRules = eventRules
        self.tokens = tokens
        self.readAuth = readAuth
        self.maxBodyBytes = maxBodyBytes
        self.maxEventsPerRequest = maxEventsPerRequest
        self.maxInFlight = maxInFlight
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// Refuses to serve without a token unless `insecureNoAuth` says to.
    /// - Throws: ``ServeConfigurationError`` naming the options that fix it.
    public static func checkAuthentication(tokens: Set<String>, insecureNoAuth: Bool) throws(ServeConfigurationError) {
        guard tokens.isEmpty && !insecureNoAuth else { return }
        throw ServeConfigurationError(
            "no token configured: give --token (or ENCORE_TOKENS) so writes need one, or --insecure-no-auth to serve "
                + "every endpoint unauthenticated")
    }

    /// Tokens from repeated `--token` values and the `ENCORE_TOKENS` environment variable (comma-separated).
    public static func tokens(flags: [String], environment: [String: String]) -> Set<String> {
        var out = Set(flags.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
        if let env = environment["ENCORE_TOKENS"] {
            for t in env.split(separator: ",") {
                let s = t.trimmingCharacters(in: .whitespaces)
                if !s.isEmpty { out.insert(s) }
            }
        }
        return out
    }
}

/// A server configuration that cannot be served, with what to change.
public struct ServeConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The message.
    public let description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}
