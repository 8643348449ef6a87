import Foundation

/// Runs blocking work (hashing, waiting for a worker process, fsync of an upload) on a thread of its
/// own and waits for it without holding one of Swift's cooperative threads, which serve the requests.
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}
