/**
 * The policy editor (admins): a policy as YAML, checked by the server (POST
 * /v1/policies/check: the same checks applying runs), every message shown under the line
 * it is about, and what applying would change as a diff against the stored policy. Apply
 * stores it (all or nothing); nothing is stored before that.
 */
import './restore-pages.css';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { PolicyCheckProblem } from '@hoard/protocol/api';
import { api, errorText } from '../api.js';
import type { PageProps } from '../app.js';
import { ErrorNotice, Page } from '../components/page.js';
import { useApi } from '../components/use-api.js';

type CheckResult = Awaited<ReturnType<typeof api.checkPolicies>>;

const TEMPLATE = `name: my-policy
sources:
  - agents: [AGENT]
    specs: ["dir:/srv/www"]
schedule:
  timezone: UTC
  full: "0 1 * * 0"
  incremental: daily
retention:
  keep-daily: 7
  keep-weekly: 4
`;

export function PolicyEditorPage({ query }: PageProps) {
  const list = useApi((signal) => api.listPolicies({ signal }), []);
  const [name, setName] = useState(query.get('policy') ?? '');
  const [text, setText] = useState(TEMPLATE);
  const [checked, setChecked] = useState<{ text: string; result: CheckResult } | undefined>();
  const [applied, setApplied] = useState<string | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  const editor = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    if (!name) return;
    const abort = new AbortController();
    api.getPolicy({ params: { name }, signal: abort.signal }).then(
      (p) => {
        setText(p.yaml ?? '');
        setChecked(undefined);
        setApplied(undefined);
      },
      (err: unknown) => !abort.signal.aborted && setError(errorText(err)),
    );
    return () => abort.abort();
  }, [name]);

  const check = async (): Promise<CheckResult | undefined> => {
    setBusy(true);
    setError(undefined);
    setApplied(undefined);
    try {
      const result = await api.checkPolicies({ body: { document: text } });
      setChecked({ text, result });
      return result;
    } catch (err) {
      setError(errorText(err));
      return undefined;
    } finally {
      setBusy(false);
    }
  };

  const apply = async () => {
    const result = checked?.text === text ? checked.result : await check();
    if (!result?.ok) return;
    setBusy(true);
    try {
      const answer = await api.applyPolicies({ body: { document: text } });
      setApplied(answer.policies.map((p) => `policy ${p.name} ${p.action}`).join(', '));
      setChecked(undefined);
      list.reload();
    } catch (err) {
      setError(errorText(err));
    } finally {
      setBusy(false);
    }
  };

  /** Puts the caret at a problem's line and column in the editor. */
  const goTo = (p: PolicyCheckProblem) => {
    const area = editor.current;
    if (!area || p.line === undefined) return;
    const lines = text.split('\n');
    let offset = 0;
    for (let i = 0; i < p.line - 1 && i < lines.length; i++) offset += lines[i]!.length + 1;
    offset += Math.max(0, (p.column ?? 1) - 1);
    area.focus();
    area.setSelectionRange(offset, offset);
  };

  const stale = checked !== undefined && checked.text !== text;
  return (
    <Page title="Policies">
      <div class="panel">
        <label for="policy-pick">Edit a stored policy</label>
        <select id="policy-pick" value={name} onChange={(e) => setName(e.currentTarget.value)}>
          <option value="">(a new policy)</option>
          {(list.data?.policies ?? []).map((p) => (
            <option key={p.name} value={p.name}>
              {p.name}
            </option>
          ))}
        </select>
        <label for="policy-text">Policy (YAML; docs/policies.md)</label>
        <textarea
          id="policy-text"
          ref={editor}
          rows={Math.min(30, Math.max(12, text.split('\n').length + 1))}
          spellcheck={false}
          value={text}
          onInput={(e) => setText(e.currentTarget.value)}
        />
        <p class="actions">
          <button type="button" class="secondary" id="policy-check" disabled={busy} onClick={() => void check()}>
            Check and show changes
          </button>
          <button type="button" id="policy-apply" disabled={busy || (checked !== undefined && !stale && !checked.result.ok)} onClick={() => void apply()}>
            Apply
          </button>
        </p>
      </div>
      <ErrorNotice error={error} />
      {applied ? (
        <p class="notice ok" role="status" id="policy-applied">
          Applied: {applied}
        </p>
      ) : null}
      {checked ? <CheckReport text={checked.text} result={checked.result} stale={stale} onPick={goTo} /> : null}
    </Page>
  );
}

function CheckReport({ text, result, stale, onPick }: { text: string; result: CheckResult; stale: boolean; onPick: (p: PolicyCheckProblem) => void }) {
  const byLine = new Map<number, PolicyCheckProblem[]>();
  const unplaced: PolicyCheckProblem[] = [];
  for (const p of result.problems) {
    if (p.line === undefined) unplaced.push(p);
    else byLine.set(p.line, [...(byLine.get(p.line) ?? []), p]);
  }
  return (
    <section class="panel" id="policy-report" aria-live="polite">
      {stale ? <p class="muted">The text changed since this check; check again.</p> : null}
      {result.ok ? (
        <p class="notice ok" id="policy-ok">
          No problems: applying stores this document.
        </p>
      ) : (
        <>
          <h2>
            {result.problems.length} problem{result.problems.length === 1 ? '' : 's'}
          </h2>
          <ul class="problems">
            {result.problems.map((p, i) => (
              <li key={i}>
                {p.line !== undefined ? (
                  <button type="button" class="link" onClick={() => onPick(p)}>
                    line {p.line}
                    {p.column !== undefined ? `:${p.column}` : ''}
                  </button>
                ) : null}{' '}
                {p.path ? <code>{p.path}</code> : null} {p.message}
              </li>
            ))}
          </ul>
          <h2>At their lines</h2>
          <table class="annotated">
            <tbody>
              {text.split('\n').map((line, i) => {
                const problems = byLine.get(i + 1) ?? [];
                return [
                  <tr key={`l${i}`} class={problems.length ? 'has-problem' : undefined}>
                    <td class="num muted">{i + 1}</td>
                    <td>
                      <pre>{line || ' '}</pre>
                    </td>
                  </tr>,
                  ...problems.map((p, k) => (
                    <tr key={`p${i}-${k}`} class="problem" id={`problem-line-${i + 1}`} data-line={i + 1}>
                      <td />
                      <td class="error-text">
                        {' '.repeat(Math.max(0, (p.column ?? 1) - 1))}^ {p.message}
                      </td>
                    </tr>
                  )),
                ];
              })}
            </tbody>
          </table>
          {unplaced.length ? <p class="muted">Problems without a line are about the document as a whole.</p> : null}
        </>
      )}
      {result.policies.map((p) => (
        <div key={p.name} class="policy-diff" data-policy={p.name}>
          <h2>
            {p.name}: {p.action === 'unchanged' ? 'unchanged' : `would be ${p.action}`}
          </h2>
          <pre class="diff">
            {p.diff.map((l, i) => (
              <div key={i} class={l.op === '+' ? 'add' : l.op === '-' ? 'del' : undefined}>
                {l.op} {l.text}
              </div>
            ))}
          </pre>
        </div>
      ))}
    </section>
  );
}
