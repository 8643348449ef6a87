import Foundation
import Testing

/// Threads for the suites whose tests block (`.blockingThreads`), off Swift's cooperative pool.
///
/// The pool has one thread per core: two here. A synchronous test that waits for a child process
/// (a transcode, a player, psql) holds one of them for as long as the child runs, so two such tests
/// left nothing for the rest: the async suites (servers, workers, stores, timed leases) and the
/// product's own unstructured tasks inside the test process (a store's deadline) waited up to a
/// minute and a half for a thread, and the run kept about one core busy. The blocking suites run
/// here instead, two tests at a time as before, and the pool stays free for what only waits.
final class BlockingThreads: TaskExecutor, @unchecked Sendable {  // `jobs` behind `condition`
    /// Three threads: one more blocking test at once than the pool ran (most of them wait on a player or a child process).
    static let shared = BlockingThreads(count: 3)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    private init(count: Int) {
        for _ in 0..<count {
            Thread { [unowned self] in self.work() }.start()
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

/// Runs a suite, and the tests in it (child tasks inherit the preference), on `BlockingThreads`.
struct BlockingThreadsTrait: SuiteTrait, TestScoping {
    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        try await withTaskExecutorPreference(BlockingThreads.shared) { try await function() }
    }
}

extension Trait where Self == BlockingThreadsTrait {
    /// For a suite whose tests wait for child processes: see `BlockingThreads`.
    static var blockingThreads: Self { Self() }
}
