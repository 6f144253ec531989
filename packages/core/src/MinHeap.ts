/**
 * A binary min-heap: the smallest item by a comparison, in O(1); insert and pop in O(log n).
 *
 * **When to use**
 *
 * Schedules: timers by due time, retries by next attempt. Where items can be cancelled, leave them in
 * and skip them when they surface (lazy deletion) instead of searching the heap.
 *
 * @since 0.1.0
 */

/**
 * A min-heap ordered by `compare` (negative when the first goes first).
 *
 * @since 0.1.0
 */
export class MinHeap<A> {
  readonly #items: Array<A> = []
  readonly #compare: (left: A, right: A) => number

  constructor(compare: (left: A, right: A) => number) {
    this.#compare = compare
  }

  get size(): number {
    return this.#items.length
  }

  /** The smallest item, without removing it. */
  peek(): A | undefined {
    return this.#items[0]
  }

  insert(item: A): void {
    const items = this.#items
    let index = items.length
    items.push(item)
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (this.#compare(items[parent]!, item) <= 0) break
      items[index] = items[parent]!
      index = parent
    }
    items[index] = item
  }

  /** Removes and returns the smallest item. */
  pop(): A | undefined {
    const items = this.#items
    const top = items[0]
    const last = items.pop()
    if (items.length === 0 || last === undefined) return top
    let index = 0
    while (true) {
      let child = 2 * index + 1
      if (child >= items.length) break
      if (child + 1 < items.length && this.#compare(items[child + 1]!, items[child]!) < 0) child++
      if (this.#compare(last, items[child]!) <= 0) break
      items[index] = items[child]!
      index = child
    }
    items[index] = last
    return top
  }
}
