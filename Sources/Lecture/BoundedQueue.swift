import Foundation

/// A blocking first-in first-out queue of fixed capacity between one producer thread and one
/// consumer thread. A full queue blocks the producer, so a slow consumer slows the producer instead
/// of letting memory grow.
// @unchecked Sendable: all state is guarded by `condition`.
final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    // A ring of `capacity` slots; a taken slot is cleared at once so the queue never keeps a frame alive.
    private var slots: [Element?]
    private var count = 0
    private var head = 0
    private let capacity: Int
    private var finished = false
    private var abandoned = false

    init(capacity: Int) {
        self.capacity = max(1, capacity)
        slots = Array(repeating: nil, count: self.capacity)
    }

    /// Waits for room and appends; false when the consumer has abandoned the queue.
    func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while count == capacity && !abandoned { condition.wait() }
        if abandoned { return false }
        slots[(head + count) % capacity] = item
        count += 1
        condition.broadcast()
        return true
    }

    /// Waits for an item; nil once the producer has finished and the queue is empty.
    func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while count == 0 && !finished && !abandoned { condition.wait() }
        if count == 0 || abandoned { return nil }
        let item = slots[head]
        slots[head] = nil
        head = (head + 1) % capacity
        count -= 1
        condition.broadcast()
        return item
    }

    /// The producer will put nothing more.
    func finish() {
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The consumer stops: queued items are dropped and further puts return false at once.
    func abandon() {
        condition.lock()
        abandoned = true
        for i in slots.indices { slots[i] = nil }
        count = 0
        condition.broadcast()
        condition.unlock()
    }
}
