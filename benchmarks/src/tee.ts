/**
 * Feeds one async source to several consumers, piece by piece, with one piece of
 * buffering per consumer: the source advances when every consumer has taken the piece.
 * Lets the dedup benchmark generate each day once and chunk it five ways at once.
 */
export function tee<T>(source: AsyncIterable<T>, count: number): Array<AsyncIterable<T>> {
  const iterator = source[Symbol.asyncIterator]();
  let current: Promise<IteratorResult<T>> | undefined;
  let taken = 0;
  const positions = new Array<number>(count).fill(0);
  let round = 0;
  const waiters: Array<() => void> = [];

  async function next(consumer: number): Promise<IteratorResult<T>> {
    while (positions[consumer] > round) await new Promise<void>((r) => waiters.push(r));
    current ??= iterator.next();
    const result = await current;
    positions[consumer]++;
    if (++taken === count) {
      taken = 0;
      round++;
      current = undefined;
      waiters.splice(0).forEach((w) => w());
    }
    return result;
  }

  return Array.from({ length: count }, (_, consumer) => ({
    [Symbol.asyncIterator]: () => ({
      next: () => next(consumer),
    }),
  }));
}
