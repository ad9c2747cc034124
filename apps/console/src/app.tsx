/**
 * The console's shell: who is signed in (GET /v1/console/session), the page table and the
 * navigation. A page is listed in the navigation only when the signed-in role may call the
 * route the page is for (`needs`), as the server's access lists say.
 *
 * To add a page: a file in pages/, one entry in PAGES.
 */
import type { FunctionComponent } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { RouteId } from '@hoard/protocol/api';
import { api, ApiError, errorText, may, whenSignedOut, type Role } from './api.js';
import { VIEWER_ZONE } from './components/format.js';
import { AgentsPage } from './pages/agents.js';
import { BrowsePage } from './pages/browse.js';
import { DashboardPage } from './pages/dashboard.js';
import { JobPage } from './pages/job.js';
import { NotFoundPage } from './pages/not-found.js';
import { PolicyEditorPage } from './pages/policy-editor.js';
import { RestorePage } from './pages/restore.js';
import { SignInPage } from './pages/sign-in.js';
import { TasksPage } from './pages/tasks.js';
import { Link, matchPath, navigate, useLocation } from './router.js';
import { SessionContext, type Session } from './session.js';

export interface PageProps {
  params: Record<string, string>;
  query: URLSearchParams;
}

export interface PageEntry {
  /** Path under /ui with `:name` params. */
  path: string;
  page: FunctionComponent<PageProps>;
  /** In the navigation under this label. */
  nav?: string;
  /** Offered only to roles that may call this route. */
  needs?: RouteId;
}

export const PAGES: PageEntry[] = [
  { path: '/', page: DashboardPage, nav: 'Dashboard' },
  { path: '/jobs/:job', page: JobPage },
  { path: '/agents', page: AgentsPage, nav: 'Agents', needs: 'listAgents' },
  { path: '/tasks', page: TasksPage, nav: 'Tasks', needs: 'listTasks' },
  { path: '/restore', page: RestorePage, nav: 'Restore', needs: 'pickSnapshot' },
  { path: '/browse/:job/:id', page: BrowsePage, needs: 'browseSnapshot' },
  { path: '/policies', page: PolicyEditorPage, nav: 'Policies', needs: 'checkPolicies' },
];

type Auth = { state: 'checking' } | { state: 'signed-out'; reason?: string } | { state: 'signed-in'; session: Session };

export function App() {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const { path, query } = useLocation();

  useEffect(() => {
    whenSignedOut(() => setAuth({ state: 'signed-out', reason: 'Your session ended: sign in again.' }));
    api.consoleSession().then(
      (session) => setAuth({ state: 'signed-in', session }),
      (err: unknown) =>
        setAuth({ state: 'signed-out', reason: err instanceof ApiError && err.status === 401 ? undefined : `The server did not answer: ${errorText(err)}` }),
    );
  }, []);

  if (auth.state === 'checking') return <p class="muted boot">Connecting to the media server…</p>;
  if (auth.state === 'signed-out')
    return (
      <SignInPage
        reason={auth.reason}
        onSignedIn={(session) => {
          setAuth({ state: 'signed-in', session });
          if (path === '/signin') navigate('/', { replace: true });
        }}
      />
    );

  const role = auth.session.role as Role;
  const offered = PAGES.filter((p) => !p.needs || may(role, p.needs));
  let content = <NotFoundPage params={{}} query={query} />;
  for (const entry of offered) {
    const params = matchPath(entry.path, path);
    if (params) {
      const Page = entry.page;
      content = <Page params={params} query={query} />;
      break;
    }
  }
  const signedOut = () => setAuth({ state: 'signed-out', reason: 'You are signed out.' });
  return (
    <SessionContext.Provider value={{ session: auth.session, signedOut }}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <Link href="/" class="brand">
          hoard
        </Link>
        <nav aria-label="Pages">
          <ul>
            {offered
              .filter((p) => p.nav)
              .map((p) => {
                const current = p.path === '/' ? path === '/' : path.startsWith(p.path);
                return (
                  <li key={p.path}>
                    <Link href={p.path} aria-current={current ? 'page' : undefined}>
                      {p.nav}
                    </Link>
                  </li>
                );
              })}
          </ul>
        </nav>
        <div class="who">
          <span>
            {auth.session.label} <span class="badge idle">{auth.session.role}</span>
          </span>
          <span class="muted zone" title="Every time is shown in this zone">
            Times: {VIEWER_ZONE}
          </span>
          <SignOutButton onDone={signedOut} />
        </div>
      </header>
      <main id="main">{content}</main>
    </SessionContext.Provider>
  );
}

function SignOutButton({ onDone }: { onDone: () => void }) {
  const [busy, setBusy] = useState(false);
  return (
    <button
      type="button"
      class="secondary"
      disabled={busy}
      onClick={async () => {
        setBusy(true);
        try {
          await api.signOut();
        } catch {
          // Signed out either way: the session is gone or the cookie is.
        }
        onDone();
      }}
    >
      Sign out
    </button>
  );
}
