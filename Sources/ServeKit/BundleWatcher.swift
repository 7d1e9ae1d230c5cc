import EncoreCore
import Foundation
import Logging
import ServiceLifecycle
import EncoreServing

/// Polls the model's watched file and reloads the engine when it was replaced (another inode, size or modification
/// time): a published unit's manifest (`current.json`, switched by one rename, so a new version is one event), or a
/// plain bundle file. Stops on graceful shutdown and on cancellation.
public struct BundleWatcher: Service {
    let holder: EngineHolder
    let interval: Duration
    let logger: Logger

    /// A watcher polling every `interval`.
    public init(holder: EngineHolder, interval: Duration, logger: Logger) {
        self.holder = holder
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        let failed = Locked<FileIdentity?>(nil)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await Task.sleep(for: interval)
            } catch {
                return  // canceled
            }
            if Task.isShuttingDownGracefully { return }
            guard let engine = holder.current else { continue }
            let model = engine.model
            guard let now = FileIdentity.of(model.watchPath), now != model.fileIdentity else { continue }
            // A file that failed to load is tried again only once it changes again.
            if failed.withLock({ $0 == now }) { continue }
            logger.info("model changed: reloading", metadata: ["path": .string(model.path), "watched": .string(model.watchPath)])
            let ok = await withCheckedContinuation { (c: CheckedContinuation<Bool, Never>) in
                DispatchQueue.global().async {
                    do {
                        try engine.reload()
                        c.resume(returning: true)
                    } catch {
                        c.resume(returning: false)
                    }
                }
            }
            failed.withLock { $0 = ok ? nil : now }
        }
    }
}

/// Loads the engine in the background (`/ready` answers 503 until it is in the holder), then waits for shutdown
/// and closes the event log.
public struct EngineLoader: Service {
    let holder: EngineHolder
    let load: @Sendable () throws -> RealtimeEngine
    let logger: Logger

    /// A loader running `load`.
    public init(holder: EngineHolder, logger: Logger, load: @escaping @Sendable () throws -> RealtimeEngine) {
        self.holder = holder
        self.load = load
        self.logger = logger
    }

    public func run() async throws {
        let load = self.load
        let engine = try await withCheckedThrowingContinuation { (c: CheckedContinuation<RealtimeEngine, any Error>) in
            Thread.detachNewThread {
                do { c.resume(returning: try load()) } catch { c.resume(throwing: error) }
            }
        }
        holder.set(engine)
        logger.info("ready", metadata: ["bundle": .string(engine.model.version), "log_last_sequence": "\(engine.lastSequence)"])
        // Wait for shutdown (graceful or cancellation), then close the log.
        await withGracefulShutdownHandler {
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                try? await Task.sleep(for: .milliseconds(200))
            }
        } onGracefulShutdown: {}
        do { try engine.close() } catch {
            logger.error("closing the event log failed", metadata: ["reason": .string(error.description)])
        }
        logger.info("event log closed")
    }
}
