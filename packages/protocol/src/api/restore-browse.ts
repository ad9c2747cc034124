/**
 * Restore from a browser (the console's restore wizard, issue 17): which snapshot a time
 * picks, a directory snapshot's tree one level at a time, downloads (one file, a subtree
 * or the whole snapshot as tar, an image as its bytes), and a policy document checked
 * with positions and a diff before it is applied. Operators and admins; viewers never
 * see data.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Bytes, Count, IsoTime, JobName, READ_TIME, SnapshotId, SourceKind } from './common.js';
import { defineRoute, type Role } from './contract.js';

const optional = Type.Optional;
const RESTORERS: readonly Role[] = ['admin', 'operator'];
/** A snapshot named in a path: its id or a unique prefix of 4+ hex digits. */
const SnapshotParams = Type.Object({
  job: JobName,
  id: Type.String({ minLength: 4, maxLength: 64, description: 'a snapshot id or a unique prefix of 4+ hex digits' }),
});

export const PickedSnapshot = Type.Object(
  {
    job: JobName,
    id: SnapshotId,
    key: Type.String(),
    source: Type.Object({ name: Type.String(), kind: SourceKind }, { additionalProperties: false }),
    startedAt: IsoTime,
    finishedAt: IsoTime,
    logicalBytes: Bytes,
  },
  { additionalProperties: false, title: 'PickedSnapshot' },
);
export type PickedSnapshot = Static<typeof PickedSnapshot>;

export const pickSnapshot = defineRoute({
  id: 'pickSnapshot',
  method: 'GET',
  path: '/v1/jobs/:job/pick',
  access: RESTORERS,
  tag: 'snapshots',
  summary: 'Which snapshot a restore `--at` a time would choose: the newest that started at or before it (no time: the newest)',
  params: Type.Object({ job: JobName }),
  query: Type.Object({ at: optional(READ_TIME), source: optional(Type.String({ minLength: 1, maxLength: 4096 })) }),
  reply: Type.Object(
    {
      at: optional(IsoTime),
      snapshot: PickedSnapshot,
      rule: Type.String({ description: 'the rule that chose it, in words' }),
    },
    { additionalProperties: false },
  ),
});

export const TreeEntry = Type.Object(
  {
    name: Type.String({ description: 'the last part of the path (UTF-8; bytes that are not are replaced)' }),
    path: Type.String({ description: 'relative to the backed-up directory' }),
    type: Type.Union([Type.Literal('file'), Type.Literal('dir'), Type.Literal('symlink')]),
    size: Bytes,
    mode: Type.Integer({ minimum: 0, maximum: 0o7777, description: 'permission bits (and setuid, setgid, sticky)' }),
    mtime: IsoTime,
    target: optional(Type.String({ description: "a symlink's target" })),
    children: optional(Count),
  },
  { additionalProperties: false, title: 'TreeEntry' },
);
export type TreeEntry = Static<typeof TreeEntry>;

export const browseSnapshot = defineRoute({
  id: 'browseSnapshot',
  method: 'GET',
  path: '/v1/jobs/:job/snapshots/:id/tree',
  access: RESTORERS,
  tag: 'snapshots',
  summary: "One directory of a directory snapshot's tree, in pages (cursor and limit), directories first, then by name",
  params: SnapshotParams,
  query: Type.Object({
    path: optional(Type.String({ maxLength: 65535, description: 'the directory, relative to the backed-up one (default: its top)' })),
    cursor: optional(Type.String({ maxLength: 32, description: 'where the previous page ended (its `next`)' })),
    limit: optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'entries per page (default 200)' })),
  }),
  reply: Type.Object(
    {
      snapshot: SnapshotId,
      path: Type.String(),
      total: Count,
      entries: Type.Array(TreeEntry),
      next: optional(Type.String({ description: 'the cursor of the next page; absent on the last page' })),
    },
    { additionalProperties: false },
  ),
});

export const downloadSnapshot = defineRoute({
  id: 'downloadSnapshot',
  method: 'GET',
  path: '/v1/jobs/:job/snapshots/:id/download',
  access: RESTORERS,
  tag: 'snapshots',
  summary:
    'A download for a browser: an image, file or dump snapshot as its bytes; from a directory snapshot one file, or a subtree or the whole tree as tar. Every chunk is checked; a failed check cuts the download',
  params: SnapshotParams,
  query: Type.Object({
    path: optional(Type.String({ maxLength: 65535, description: 'in a directory snapshot: a file or a directory (default: the whole tree)' })),
    format: optional(
      Type.Union([Type.Literal('raw'), Type.Literal('tar')], { description: 'tar: a file as a tar too (default: a file raw, a directory as tar)' }),
    ),
  }),
  replyPayload: 'binary',
});

export const PolicyCheckProblem = Type.Object(
  {
    path: Type.String({ description: 'the field, e.g. policies[0].schedule.full; empty for the document' }),
    message: Type.String(),
    line: optional(Type.Integer({ minimum: 1 })),
    column: optional(Type.Integer({ minimum: 1 })),
  },
  { additionalProperties: false },
);
export type PolicyCheckProblem = Static<typeof PolicyCheckProblem>;

export const checkPolicies = defineRoute({
  id: 'checkPolicies',
  method: 'POST',
  path: '/v1/policies/check',
  access: ['admin'],
  tag: 'policies',
  summary: 'Check a policy document without storing it: every problem with its line and column, and per policy a diff against the stored one',
  body: Type.Object({
    document: Type.String({ maxLength: 4 * 1024 * 1024, description: 'the policy file as text' }),
    format: optional(Type.Union([Type.Literal('yaml'), Type.Literal('json')])),
  }),
  reply: Type.Object(
    {
      ok: Type.Boolean({ description: 'no problems: applyPolicies would store this document' }),
      problems: Type.Array(PolicyCheckProblem),
      policies: Type.Array(
        Type.Object(
          {
            name: Type.String(),
            action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]),
            diff: Type.Array(
              Type.Object({ op: Type.Union([Type.Literal(' '), Type.Literal('+'), Type.Literal('-')]), text: Type.String() }, { additionalProperties: false }),
              { description: 'the stored policy against this one as YAML, line by line (secrets redacted on both sides)' },
            ),
          },
          { additionalProperties: false },
        ),
      ),
    },
    { additionalProperties: false },
  ),
});
