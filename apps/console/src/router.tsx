/**
 * A small path router for the console's pages under /ui (history API, no hash): the media
 * server answers every /ui path with index.html, so a page's URL can be bookmarked and
 * reloaded. Links are real <a href> elements (open in a new tab, keyboard, screen readers).
 */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';

/** Where the media server serves the console. */
export const BASE = '/ui';

/** The page path under BASE, e.g. `/jobs/nightly` for /ui/jobs/nightly. */
export function currentPath(): string {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : location.pathname;
  return path === '' ? '/' : path;
}

const CHANGED = 'hoard:navigate';

export function navigate(to: string, options: { replace?: boolean } = {}): void {
  const url = BASE + (to.startsWith('/') ? to : `/${to}`);
  if (options.replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  window.dispatchEvent(new Event(CHANGED));
}

/** The current page path (and query), re-rendering on navigation. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, setTick] = useState(0);
  useEffect(() => {
    const on = () => setTick((n) => n + 1);
    window.addEventListener('popstate', on);
    window.addEventListener(CHANGED, on);
    return () => {
      window.removeEventListener('popstate', on);
      window.removeEventListener(CHANGED, on);
    };
  }, []);
  return { path: currentPath(), query: new URLSearchParams(location.search) };
}

/** The params of `pattern` (`/jobs/:job`) in `path`, or undefined when it does not match. */
export function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/').filter(Boolean);
  const have = path.split('/').filter(Boolean);
  if (want.length !== have.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i]!;
    if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(have[i]!);
    else if (w !== have[i]) return undefined;
  }
  return params;
}

/** A page path for a job and the like: each segment encoded. */
export function pagePath(...segments: string[]): string {
  return `/${segments.map(encodeURIComponent).join('/')}`;
}

type LinkProps = Omit<JSX.HTMLAttributes<HTMLAnchorElement>, 'href'> & { href: string; children?: ComponentChildren };

/** A link to a console page: a plain left click navigates in place, anything else is the browser's. */
export function Link({ href, children, ...rest }: LinkProps) {
  const onClick = (e: MouseEvent) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return (
    <a {...rest} href={BASE + href} onClick={onClick}>
      {children}
    </a>
  );
}
