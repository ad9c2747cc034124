/**
 * Agents: who is registered, when each was last seen; admins add, rotate and revoke. A new
 * token is shown once, here, as `hoard agent add` prints it once: the server keeps only its hash.
 */
import type { AgentView } from '@hoard/protocol';
import { useState } from 'preact/hooks';
import { api, errorText } from '../api.js';
import type { PageProps } from '../app.js';
import { formatAge } from '../components/format.js';
import { ErrorNotice, Loading, Page, StateBadge } from '../components/page.js';
import { Time } from '../components/time.js';
import { useApi } from '../components/use-api.js';
import { useMay } from '../session.js';

const ONLINE_MS = 3 * 60_000;

export function AgentsPage(_: PageProps) {
  const may = useMay();
  const agents = useApi((signal) => api.listAgents({ signal }), []);
  const [name, setName] = useState('');
  const [issued, setIssued] = useState<{ name: string; token: string; action: string } | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [confirming, setConfirming] = useState<string | undefined>();

  const act = async (work: () => Promise<void>) => {
    setError(undefined);
    try {
      await work();
    } catch (err) {
      setError(errorText(err));
    }
    agents.reload();
  };
  const add = (e: Event) => {
    e.preventDefault();
    void act(async () => {
      const r = await api.addAgent({ body: { name: name.trim() } });
      setIssued({ name: r.name, token: r.token, action: 'added' });
      setName('');
    });
  };
  const rotate = (agent: string) =>
    act(async () => {
      const r = await api.rotateAgent({ params: { name: agent } });
      setIssued({ name: r.name, token: r.token, action: 'given a new token (the old one stopped working)' });
    });
  const revoke = (agent: string) =>
    act(async () => {
      await api.revokeAgent({ params: { name: agent } });
      setConfirming(undefined);
      if (issued?.name === agent) setIssued(undefined);
    });

  const now = Date.now();
  return (
    <Page title="Agents">
      <ErrorNotice error={error ?? agents.error} />
      {issued ? (
        <div class="panel token-once" role="status">
          <p>
            Agent <strong>{issued.name}</strong> was {issued.action}. Its token is shown <strong>once</strong>: give it to the agent now (
            <code>hoard agent start --server URL --token TOKEN</code>).
          </p>
          <label for="issued-token">Token of {issued.name}</label>
          <input id="issued-token" readOnly value={issued.token} onFocus={(e) => (e.target as HTMLInputElement).select()} />
          <p>
            <button type="button" class="secondary" onClick={() => setIssued(undefined)}>
              I have stored it: hide the token
            </button>
          </p>
        </div>
      ) : null}
      {may('addAgent') ? (
        <form class="panel inline-form" onSubmit={add}>
          <label for="agent-name">New agent</label>
          <input
            id="agent-name"
            value={name}
            required
            pattern="[a-z0-9][a-z0-9._\-]*"
            placeholder="db1"
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
          <button type="submit" disabled={name.trim() === ''}>
            Add agent
          </button>
        </form>
      ) : null}
      {agents.data ? (
        <div class="table-wrap">
          <table class="agents">
            <thead>
              <tr>
                <th scope="col">Agent</th>
                <th scope="col">State</th>
                <th scope="col">Host</th>
                <th scope="col">Added</th>
                {may('revokeAgent') ? <th scope="col">Actions</th> : null}
              </tr>
            </thead>
            <tbody>
              {agents.data.agents.map((a) => (
                <tr key={a.name} data-agent={a.name}>
                  <th scope="row">{a.name}</th>
                  <td>
                    <AgentState agent={a} now={now} />
                  </td>
                  <td>
                    {a.hostname ?? '–'} <span class="small muted">{a.version ?? ''}</span>
                  </td>
                  <td>
                    <Time at={a.createdAt} />
                  </td>
                  {may('revokeAgent') ? (
                    <td class="actions">
                      {a.revokedAt ? null : confirming === a.name ? (
                        <>
                          <span>Revoke {a.name}? Its jobs and snapshots stay.</span>
                          <button type="button" class="danger" onClick={() => revoke(a.name)}>
                            Revoke
                          </button>
                          <button type="button" class="secondary" onClick={() => setConfirming(undefined)}>
                            Keep
                          </button>
                        </>
                      ) : (
                        <>
                          {may('rotateAgent') ? (
                            <button type="button" class="secondary" onClick={() => rotate(a.name)}>
                              Rotate token
                            </button>
                          ) : null}
                          <button type="button" class="secondary" onClick={() => setConfirming(a.name)}>
                            Revoke…
                          </button>
                        </>
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : agents.error ? null : (
        <Loading what="agents" />
      )}
    </Page>
  );
}

function AgentState({ agent, now }: { agent: AgentView; now: number }) {
  if (agent.revokedAt) return <StateBadge state="revoked" />;
  const online = agent.lastSeenAt !== undefined && now - new Date(agent.lastSeenAt).getTime() < ONLINE_MS;
  return (
    <>
      <StateBadge state={online ? 'online' : 'offline'} />{' '}
      <span class="small muted">{agent.lastSeenAt ? `seen ${formatAge(agent.lastSeenAt, now)}` : 'never seen'}</span>
    </>
  );
}
