/** The frame of a page: its heading (focused on navigation, for screen readers), notices, content. */
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

export function Page({ title, actions, children }: { title: ComponentChildren; actions?: ComponentChildren; children?: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (typeof title === 'string') document.title = `${title} · hoard`;
    heading.current?.focus({ preventScroll: true });
  }, [title]);
  return (
    <section class="page">
      <header class="page-head">
        <h1 tabIndex={-1} ref={heading}>
          {title}
        </h1>
        {actions ? <div class="actions">{actions}</div> : null}
      </header>
      {children}
    </section>
  );
}

/** An error in a role=alert box (read out at once). */
export function ErrorNotice({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <p class="notice error" role="alert">
      {error}
    </p>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

/** A state badge: ok, failed, running, queued, cancelled, and the like. */
export function StateBadge({ state, label }: { state: string; label?: string }) {
  const tone =
    state === 'succeeded' || state === 'ok' || state === 'online'
      ? 'ok'
      : state === 'failed' || state === 'error' || state === 'overdue'
        ? 'bad'
        : state === 'running' || state === 'queued'
          ? 'busy'
          : 'idle';
  return <span class={`badge ${tone}`}>{label ?? state}</span>;
}
