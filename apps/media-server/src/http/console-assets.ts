/**
 * The web console's static files under /ui, on the API's port (docs/console.md): the
 * single-page app that `npm run build` writes to apps/console/dist. Hashed files under
 * assets/ are cached for good; index.html is never cached, and answers every other /ui
 * path (the app's own routes, e.g. /ui/jobs/nightly), so a page can be reloaded or
 * bookmarked. Without a build, /ui says how to make one.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/** Where a checkout's build puts the console (apps/console/dist beside this package). */
export const DEFAULT_CONSOLE_DIR = fileURLToPath(new URL('../../../console/dist', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};

/**
 * The page may load only what this server serves (no CDN, no inline script), may not be
 * framed by another site (clickjacking), and sends no Referer elsewhere.
 */
const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

const NOT_BUILT =
  'The hoard web console is not built on this server: run `npm run build` in the hoard checkout (it writes apps/console/dist), then reload this page.\n';

export function registerConsoleAssets(app: FastifyInstance, dir: string = DEFAULT_CONSOLE_DIR): void {
  const root = resolve(dir);
  const serve = async (request: FastifyRequest, reply: FastifyReply) => {
    const path = decodeURIComponent(request.url.split('?')[0]!).slice('/ui'.length).replace(/^\/+/, '');
    const file = resolve(root, path);
    // `..` may not leave the console's directory.
    const inside = file === root || file.startsWith(root + sep);
    if (inside && path !== '' && (await isFile(file))) return sendFile(reply, file, path.startsWith('assets/'));
    // A missing asset is a 404; any other path is a page of the app.
    if (path.startsWith('assets/') || !inside) return reply.code(404).type('text/plain; charset=utf-8').send(`no console file /ui/${path}\n`);
    const index = join(root, 'index.html');
    if (!(await isFile(index))) return reply.code(503).headers(SECURITY_HEADERS).type('text/plain; charset=utf-8').send(NOT_BUILT);
    return sendFile(reply, index, false);
  };
  const hide = { schema: { hide: true } };
  app.get('/ui', hide, async (_request, reply) => reply.redirect('/ui/', 302));
  app.get('/ui/', hide, serve);
  app.get('/ui/*', hide, serve);
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function sendFile(reply: FastifyReply, file: string, immutable: boolean): Promise<FastifyReply> {
  const { size } = await stat(file);
  return reply
    .code(200)
    .headers({
      ...SECURITY_HEADERS,
      'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(size),
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
    })
    .send(createReadStream(file));
}
