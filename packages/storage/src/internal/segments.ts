/**
 * The index of the last segment whose base is at or below `key`, in segments sorted by base
 * (0 when every base is above it). Commit-log positions and index offsets both find their segment so.
 */
export const floorSegment = (segments: ReadonlyArray<{ readonly base: number }>, key: number): number => {
  let low = 0
  let high = segments.length - 1
  while (low < high) {
    const middle = (low + high + 1) >> 1
    if (segments[middle]!.base <= key) low = middle
    else high = middle - 1
  }
  return low
}
