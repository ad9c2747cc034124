/**
 * Browse a directory snapshot (operators and admins): one directory at a time, in pages of
 * 200 entries ("Show more" fetches the next page with the server's cursor, so a directory
 * of 100k+ entries never loads at once); download one file, or a directory as a tar.
 */
import './restore-pages.css';
import { useEffect, useState } from 'preact/hooks';
import type { TreeEntry } from '@hoard/protocol/api';
import { api, errorText, routeUrl } from '../api.js';
import type { PageProps } from '../app.js';
import { formatBytes } from '../components/format.js';
import { ErrorNotice, Loading, Page } from '../components/page.js';
import { Time } from '../components/time.js';
import { Link, pagePath } from '../router.js';

const PAGE = 200;

export function BrowsePage({ params, query }: PageProps) {
  const { job, id } = params as { job: string; id: string };
  const path = query.get('path') ?? '';
  const [entries, setEntries] = useState<TreeEntry[]>([]);
  const [total, setTotal] = useState<number | undefined>();
  const [next, setNext] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [loading, setLoading] = useState(true);

  const load = async (cursor: string | undefined, signal?: AbortSignal): Promise<void> => {
    setLoading(true);
    try {
      const page = await api.browseSnapshot({ params: { job, id }, query: { path: path || undefined, cursor, limit: PAGE }, signal });
      setEntries((old) => (cursor === undefined ? page.entries : [...old, ...page.entries]));
      setTotal(page.total);
      setNext(page.next);
      setError(undefined);
    } catch (err) {
      if (!signal?.aborted) setError(errorText(err));
    } finally {
      if (!signal?.aborted) setLoading(false);
    }
  };

  useEffect(() => {
    const abort = new AbortController();
    setEntries([]);
    void load(undefined, abort.signal);
    return () => abort.abort();
  }, [job, id, path]);

  const here = (p: string) => `${pagePath('browse', job, id)}${p ? `?path=${encodeURIComponent(p)}` : ''}`;
  const parts = path.split('/').filter(Boolean);
  const download = (p: string, tar = false) =>
    routeUrl('downloadSnapshot', { params: { job, id }, query: { path: p || undefined, format: tar ? 'tar' : undefined } });

  return (
    <Page
      title={`Browse ${job}`}
      actions={
        <a class="button secondary" id="download-dir" href={download(path)} download>
          Download {path ? parts.at(-1) : 'everything'} as tar
        </a>
      }
    >
      <p class="muted">
        Snapshot <code>{id}</code>
      </p>
      <nav aria-label="Path" class="crumbs">
        <Link href={here('')}>{job}</Link>
        {parts.map((part, i) => (
          <span key={i}>
            {' / '}
            <Link href={here(parts.slice(0, i + 1).join('/'))}>{part}</Link>
          </span>
        ))}
      </nav>
      <ErrorNotice error={error} />
      {total !== undefined ? (
        <p class="muted small" id="browse-count" aria-live="polite">
          {entries.length} of {total} entries shown
        </p>
      ) : null}
      <div class="table-wrap">
        <table id="browse-table">
          <thead>
            <tr>
              <th>Name</th>
              <th class="num">Size</th>
              <th>Mode</th>
              <th>Modified</th>
              <th>
                <span class="sr-only">Download</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {entries.map((e) => (
              <tr key={e.path} data-path={e.path}>
                <td>
                  {e.type === 'dir' ? (
                    <Link href={here(e.path)}>{e.name}/</Link>
                  ) : e.type === 'symlink' ? (
                    <span>
                      {e.name} <span class="muted">→ {e.target}</span>
                    </span>
                  ) : (
                    e.name
                  )}
                </td>
                <td class="num">{e.type === 'dir' ? `${e.children ?? 0} entries` : e.type === 'file' ? formatBytes(e.size) : ''}</td>
                <td>
                  <code>{e.mode.toString(8).padStart(4, '0')}</code>
                </td>
                <td>
                  <Time at={e.mtime} />
                </td>
                <td>
                  {e.type === 'file' ? (
                    <a href={download(e.path)} download class="download-file" aria-label={`Download ${e.name}`}>
                      Download
                    </a>
                  ) : e.type === 'dir' ? (
                    <a href={download(e.path)} download aria-label={`Download ${e.name} as tar`}>
                      Tar
                    </a>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {loading ? <Loading what="entries" /> : null}
      {next !== undefined && !loading ? (
        <button type="button" class="secondary" id="browse-more" onClick={() => void load(next)}>
          Show {Math.min(PAGE, (total ?? 0) - entries.length)} more
        </button>
      ) : null}
    </Page>
  );
}
