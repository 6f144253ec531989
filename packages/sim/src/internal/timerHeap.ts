// A binary min-heap of timers ordered by (due time, registration sequence). Each timer knows its
// slot, so a cancelled sleep removes its timer in O(log n) instead of leaving a tombstone behind.

/** One pending timer. `index` is its slot in the heap, or -1 once it has fired or been removed. */
export interface Timer {
  readonly at: number
  readonly sequence: number
  readonly fire: () => void
  index: number
}

const before = (left: Timer, right: Timer): boolean =>
  left.at < right.at || (left.at === right.at && left.sequence < right.sequence)

/** The heap; `insert`, `pop` and `remove` are O(log n), `peek` is O(1). */
export class TimerHeap {
  private readonly slots: Array<Timer> = []
  private nextSequence = 0

  get size(): number {
    return this.slots.length
  }

  peek(): Timer | undefined {
    return this.slots[0]
  }

  insert(at: number, fire: () => void): Timer {
    const timer: Timer = { at, sequence: this.nextSequence++, fire, index: this.slots.length }
    this.slots.push(timer)
    this.siftUp(timer.index)
    return timer
  }

  pop(): Timer | undefined {
    const top = this.slots[0]
    if (top !== undefined) this.removeAt(0)
    return top
  }

  /** Removes a timer that has not fired yet; a no-op for one that has fired or was removed. */
  remove(timer: Timer): void {
    if (timer.index >= 0 && this.slots[timer.index] === timer) this.removeAt(timer.index)
  }

  private removeAt(index: number): void {
    const slots = this.slots
    const removed = slots[index]!
    const last = slots.pop()!
    removed.index = -1
    if (last === removed) return
    slots[index] = last
    last.index = index
    this.siftDown(index)
    this.siftUp(last.index)
  }

  private siftUp(index: number): void {
    const slots = this.slots
    const timer = slots[index]!
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = slots[parentIndex]!
      if (!before(timer, parent)) break
      slots[index] = parent
      parent.index = index
      index = parentIndex
    }
    slots[index] = timer
    timer.index = index
  }

  private siftDown(index: number): void {
    const slots = this.slots
    const length = slots.length
    const timer = slots[index]!
    while (true) {
      let childIndex = 2 * index + 1
      if (childIndex >= length) break
      const right = childIndex + 1
      if (right < length && before(slots[right]!, slots[childIndex]!)) childIndex = right
      const child = slots[childIndex]!
      if (!before(child, timer)) break
      slots[index] = child
      child.index = index
      index = childIndex
    }
    slots[index] = timer
    timer.index = index
  }
}
