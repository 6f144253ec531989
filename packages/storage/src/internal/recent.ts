// The records appended last, per queue, kept in memory within one byte budget across all queues
// (oldest appended, first dropped): a reader keeping up with the appends is served without a disk
// read, an index lookup or a record decode.

/** One queue's recent records: a contiguous run of offsets from `base`. */
export interface Line<R> {
  readonly records: Array<R | undefined>
  head: number
  base: number
}

export const make = <R extends { readonly offset: number }>(options: {
  readonly budgetBytes: number
  readonly sizeOf: (record: R) => number
}) => {
  // every cached record's line and offset, in the order appended (entries of records a line has
  // since dropped are skipped when they come up)
  const order: Array<{ readonly line: Line<R>; readonly offset: number } | undefined> = []
  let orderHead = 0
  let bytes = 0

  const count = (line: Line<R>) => line.records.length - line.head

  const dropOldest = (line: Line<R>) => {
    const record = line.records[line.head]!
    line.records[line.head++] = undefined
    line.base++
    bytes -= options.sizeOf(record)
    if (line.head === line.records.length) {
      line.records.length = 0
      line.head = 0
    } else if (line.head > 1024 && line.head * 2 > line.records.length) {
      line.records.splice(0, line.head)
      line.head = 0
    }
  }

  const clear = (line: Line<R>) => {
    while (count(line) > 0) dropOldest(line)
  }

  return {
    line: (): Line<R> => ({ records: [], head: 0, base: 0 }),

    /** Keeps a record just appended to `line`'s queue. */
    add: (line: Line<R>, record: R) => {
      // appends are contiguous per queue; anything else starts the line afresh
      if (count(line) > 0 && line.base + count(line) !== record.offset) clear(line)
      if (count(line) === 0) line.base = record.offset
      line.records.push(record)
      order.push({ line, offset: record.offset })
      bytes += options.sizeOf(record)
      while (bytes > options.budgetBytes && orderHead < order.length) {
        const oldest = order[orderHead]!
        order[orderHead++] = undefined
        if (count(oldest.line) > 0 && oldest.line.base === oldest.offset) dropOldest(oldest.line)
      }
      if (orderHead > 4096 && orderHead * 2 > order.length) {
        order.splice(0, orderHead)
        orderHead = 0
      }
    },

    /** Forgets every record of `line` (its queue was cut back). */
    clear,

    /**
     * Up to `maxCount` records from `offset` within `maxBytes` (always at least one), when `offset` is
     * among the line's records; `undefined` when it is not.
     */
    read: (line: Line<R>, offset: number, maxCount: number, maxBytes: number): Array<R> | undefined => {
      if (offset < line.base || offset >= line.base + count(line)) return undefined
      const out: Array<R> = []
      let taken = 0
      for (let i = line.head + offset - line.base; i < line.records.length && out.length < maxCount; i++) {
        const record = line.records[i]!
        const size = options.sizeOf(record)
        if (out.length > 0 && taken + size > maxBytes) break
        taken += size
        out.push(record)
      }
      return out
    }
  }
}
