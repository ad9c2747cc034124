/**
 * Runs `work` over `items` with at most `limit` in flight, and hands results to `consume`
 * in input order (so callers that need order, like restore, get it without buffering more
 * than `limit` results).
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
  } finally {
    queue.length = 0;
  }
}
