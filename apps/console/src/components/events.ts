/**
 * The server's live events (GET /v1/events): one EventSource per page that wants them.
 * The browser sends the session cookie with it and reconnects by itself after a drop.
 */
import type { ChangedEvent, RunEvent, TaskEvent } from '@hoard/protocol/api';
import { useEffect, useRef, useState } from 'preact/hooks';
import { routeUrl } from '../api.js';

export interface EventHandlers {
  run?(event: RunEvent): void;
  task?(event: TaskEvent): void;
  changed?(event: ChangedEvent): void;
}

/** Listens while the component is mounted; returns whether the stream is live. */
export function useEvents(handlers: EventHandlers): boolean {
  const ref = useRef(handlers);
  ref.current = handlers;
  const [live, setLive] = useState(false);
  useEffect(() => {
    const source = new EventSource(routeUrl('events'));
    const on = (name: keyof EventHandlers) => (e: MessageEvent<string>) => {
      const handler = ref.current[name] as ((data: unknown) => void) | undefined;
      handler?.(JSON.parse(e.data));
    };
    source.addEventListener('ready', () => setLive(true));
    source.addEventListener('run', on('run'));
    source.addEventListener('task', on('task'));
    source.addEventListener('changed', on('changed'));
    source.onerror = () => setLive(false);
    return () => source.close();
  }, []);
  return live;
}
