// What every benchmark prints: a table for people, then one JSON line for machines as the last line.

/** One row of the human table: a label and its columns. */
export type Row = Readonly<Record<string, string | number>>

const cell = (value: string | number) =>
  typeof value !== "number"
    ? value
    : Math.abs(value) >= 100
    ? Math.round(value).toLocaleString("en-US")
    : value.toPrecision(3)

/** Prints rows as an aligned text table. */
export const table = (title: string, rows: ReadonlyArray<Row>) => {
  const columns = [...new Set(rows.flatMap((row) => Object.keys(row)))]
  const text = rows.map((row) => columns.map((column) => String(cell(row[column] ?? ""))))
  const widths = columns.map((column, i) => Math.max(column.length, ...text.map((line) => line[i]!.length)))
  const line = (cells: ReadonlyArray<string>) => cells.map((c, i) => c.padStart(widths[i]!)).join("  ")
  console.log(`\n${title}`)
  console.log(line(columns))
  console.log(widths.map((w) => "-".repeat(w)).join("  "))
  for (const cells of text) console.log(line(cells))
}

/** Prints the closing JSON line: `{"bench", "ratios", "figures"}`. */
export const emit = (bench: string, ratios: Record<string, number>, figures: Record<string, number | string>) => {
  const round = (n: number) => Number(n.toPrecision(4))
  const rounded = (o: Record<string, number | string>) =>
    Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "number" ? round(v) : v]))
  console.log(JSON.stringify({ bench, ratios: rounded(ratios), figures: rounded(figures) }))
}

/** Runs `body` `runs` times after one warm-up and keeps the fastest run (least disturbed by the shared VM). */
export const best = async <T extends { readonly seconds: number }>(runs: number, body: () => Promise<T>): Promise<T> => {
  await body()
  let fastest: T | undefined
  for (let i = 0; i < runs; i++) {
    const result = await body()
    if (fastest === undefined || result.seconds < fastest.seconds) fastest = result
  }
  return fastest!
}

/** The `p` quantile (0 to 1) of `samples` (sorted in place); NaN when there are none. */
export const percentile = (samples: Array<number>, p: number) => {
  if (samples.length === 0) return Number.NaN
  samples.sort((a, b) => a - b)
  return samples[Math.min(samples.length - 1, Math.floor(samples.length * p))]!
}

/** The median of `values` (the lower middle one of an even count): one figure of runs on a noisy machine. */
export const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}
