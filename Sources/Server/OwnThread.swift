import Foundation
import Synchronization

/// Runs blocking work (hashing, waiting for a worker process, fsync of an upload) on a thread of its
/// own and waits for it without holding one of Swift's cooperative threads, which serve the requests.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

struct DeadlineExceeded: Error {}

/// Runs `work` and returns its result, or throws DeadlineExceeded after `seconds` whether or not the
/// work has ended: work that ignores cancellation (a query on a connection that went silent, a
/// rename on a hung network file system) is left behind, never waited for.
func withDeadline<T: Sendable>(seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let slot = FirstResult<T>()
    return try await withCheckedThrowingContinuation { continuation in
        slot.set(continuation)
        let task = Task {
            do { slot.resume(.success(try await work())) } catch { slot.resume(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            if slot.resume(.failure(DeadlineExceeded())) { task.cancel() }
        }
    }
}

/// Blocking work on a thread of its own, given up after `seconds` (the thread is left to end by itself).
func onOwnThread<T: Sendable>(seconds: Double, _ body: @escaping @Sendable () -> T) async throws -> T {
    let slot = FirstResult<T>()
    return try await withCheckedThrowingContinuation { continuation in
        slot.set(continuation)
        Thread { slot.resume(.success(body())) }.start()
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            slot.resume(.failure(DeadlineExceeded()))
        }
    }
}

/// A continuation resumed by whichever result comes first.
private final class FirstResult<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var done = false
        var early: Result<T, any Error>?
    }
    private let state = Mutex(State())

    func set(_ c: CheckedContinuation<T, any Error>) {
        let pending: Result<T, any Error>? = state.withLock { s in
            if let early = s.early { s.done = true; return early }
            s.continuation = c
            return nil
        }
        if let pending { c.resume(with: pending) }
    }

    /// Returns whether this result was the first.
    @discardableResult
    func resume(_ result: Result<T, any Error>) -> Bool {
        let c: CheckedContinuation<T, any Error>? = state.withLock { s in
            if s.done { return nil }
            if let continuation = s.continuation { s.done = true; s.continuation = nil; return continuation }
            if s.early == nil { s.early = result }
            return nil
        }
        c?.resume(with: result)
        return c != nil
    }
}
