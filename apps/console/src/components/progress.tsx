/** A running run's progress: bar, bytes read of the total, new bytes, rate and time left. */
import type { RunEvent } from '@hoard/protocol/api';
import { formatBytes, formatDuration, formatRate } from './format.js';

export function RunProgress({ event }: { event: RunEvent }) {
  const p = event.run.progress;
  if (!p) return <span class="muted">started, no progress reported yet</span>;
  const total = p.bytesTotal;
  return (
    <div class="progress" data-run={event.run.id}>
      {total ? <progress max={total} value={Math.min(p.bytesRead, total)} aria-label={`${event.run.job} progress`} /> : null}
      <span class="small">
        {formatBytes(p.bytesRead)}
        {total ? ` of ${formatBytes(total)}` : ''} read · {formatBytes(p.bytesNew)} new · {formatRate(event.rate)}
        {event.etaSeconds !== undefined ? ` · ${formatDuration(event.etaSeconds * 1000)} left` : ''}
      </span>
      <span class="small muted"> {p.target}</span>
    </div>
  );
}
