/** A time in the viewer's zone, zone named, in a <time> element that carries the exact instant. */
import { formatAge, formatTime, VIEWER_ZONE } from './format.js';

export function Time({ at, zone = VIEWER_ZONE, age = false }: { at: string | null | undefined; zone?: string; age?: boolean }) {
  if (!at) return <span class="muted">–</span>;
  return (
    <time dateTime={at} title={`${formatTime(at, zone)} (${zone})`}>
      {formatTime(at, zone)}
      {age ? <span class="muted"> · {formatAge(at)}</span> : null}
    </time>
  );
}
