/**
 * Runs `work` over `items` with at most `limit` in flight, and hands results to `consume`
 * in input order (so callers that need order, like restore, get it without buffering more
 * than `limit` results). On failure it returns only after every started `work` has
 * settled: restore's workers write into a file descriptor that the caller closes next,
 * and a write landing after the close could hit another file that reused the number.
 */
export async function mapConcurrent<T, R>(
  items: Iterable<T> | AsyncIterable<T>,
  limit: number,
  work: (item: T) => Promise<R>,
  consume: (result: R, item: T) => void | Promise<void>,
): Promise<void> {
  const queue: { item: T; result: Promise<R> }[] = [];
  const drainOne = async () => {
    const head = queue.shift()!;
    await consume(await head.result, head.item);
  };
  try {
    for await (const item of items as AsyncIterable<T>) {
      const result = work(item);
      // Avoid an unhandled rejection while earlier results are still being consumed; the
      // error is rethrown when this result's turn comes.
      result.catch(() => undefined);
      queue.push({ item, result });
      if (queue.length >= limit) await drainOne();
    }
    while (queue.length > 0) await drainOne();
  } catch (err) {
    await Promise.allSettled(queue.map((q) => q.result));
    throw err;
  } finally {
    queue.length = 0;
  }
}
