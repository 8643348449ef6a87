import Foundation

/// A blocking first-in first-out queue of fixed capacity between one producer thread and one
/// consumer thread. A full queue blocks the producer, so a slow consumer slows the producer instead
/// of letting memory grow.
// @unchecked Sendable: all state is guarded by `condition`.
final class BoundedQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element] = []
    private var head = 0
    private let capacity: Int
    private var finished = false
    private var abandoned = false

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Waits for room and appends; false when the consumer has abandoned the queue.
    func put(_ item: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !abandoned { condition.wait() }
        if abandoned { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Waits for an item; nil once the producer has finished and the queue is empty.
    func take() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !finished && !abandoned { condition.wait() }
        if head == items.count || abandoned { return nil }
        let item = items[head]
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
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
        items.removeAll()
        head = 0
        condition.broadcast()
        condition.unlock()
    }
}
