import pLimit from 'p-limit';

/**
 * Runs `fn` over `items` with at most `limit` calls in flight (p-limit); results keep input
 * order. After the first failure no further call starts, and the returned promise rejects
 * with it at once (calls already started run on; their results are dropped).
 */
export async function mapLimit<T, R>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const run = pLimit(limit);
  return Promise.all(
    Array.from(items, (item) =>
      run(async () => {
        try {
          return await fn(item);
        } catch (err) {
          // The calls still queued never start (nor settle: Promise.all has rejected already).
          run.clearQueue();
          throw err;
        }
      }),
    ),
  );
}
