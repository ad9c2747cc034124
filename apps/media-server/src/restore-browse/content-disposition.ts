/**
 * Content-Disposition for downloads (RFC 6266): an ASCII `filename` every browser reads,
 * and `filename*` with the UTF-8 name for those that can. Names come from snapshots (paths
 * a backup recorded), so nothing in them may reach the header raw: no quotes, slashes,
 * control characters or leading dots.
 */
export function contentDisposition(name: string): string {
  const cleaned = name.replace(/[\u0000-\u001f\u007f/\\]/g, '_').replace(/^\.+/, '_') || 'download';
  const ascii = cleaned.replace(/[^A-Za-z0-9._ ()+,-]/g, '_').slice(0, 200);
  const utf8 = encodeURIComponent(cleaned).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${utf8}`;
}
