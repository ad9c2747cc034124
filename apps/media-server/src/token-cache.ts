/**
 * Who holds a token, kept in memory: every request of an agent's backup used to cost one
 * or two LevelDB gets (`getAdminToken`, `agentByTokenHash`) just to learn who sent it.
 *
 * Keyed by the token's SHA-256 (the catalog's key), never the token. Only tokens that were
 * found are kept (an unknown token is asked about again: it may be added at any time).
 * Every catalog write that touches tokens or agents (add, revoke, rotate, import: the
 * catalog's "agent", "api-token" and "import" changes) drops the whole cache before the
 * write's caller goes on, so a revoked token is refused on the very next request. A lookup
 * that was under way while such a write happened answers its own request but is not kept.
 */
import type { Catalog, CatalogChangeKind, TokenRole } from '@hoard/catalog';

/** Who a token belongs to: an API token of a role, or an agent. */
export type TokenHolder = { kind: TokenRole } | { kind: 'agent'; name: string };

/** The catalog changes that can make a cached answer wrong. */
const TOKEN_CHANGES: ReadonlySet<CatalogChangeKind> = new Set<CatalogChangeKind>(['agent', 'api-token', 'import']);
/** A server has a handful of tokens; the bound only keeps a flood of distinct ones from growing the map. */
const MAX_ENTRIES = 4096;

export class TokenCache {
  private readonly known = new Map<string, TokenHolder>();
  /** Bumped by every token change: a lookup that started before one is not kept. */
  private generation = 0;
  private readonly unsubscribe: () => void;

  constructor(private readonly catalog: Catalog) {
    this.unsubscribe = catalog.onChange(({ kind }) => {
      if (TOKEN_CHANGES.has(kind)) this.clear();
    });
  }

  get size(): number {
    return this.known.size;
  }

  /** The holder of the token with this hash; undefined for an unknown or revoked token. */
  async holder(hash: string): Promise<TokenHolder | undefined> {
    const cached = this.known.get(hash);
    if (cached) return cached;
    const generation = this.generation;
    const found = await this.lookup(hash);
    if (found && generation === this.generation) {
      if (this.known.size >= MAX_ENTRIES) this.known.clear();
      this.known.set(hash, found);
    }
    return found;
  }

  clear(): void {
    this.generation++;
    this.known.clear();
  }

  close(): void {
    this.unsubscribe();
    this.clear();
  }

  private async lookup(hash: string): Promise<TokenHolder | undefined> {
    const token = await this.catalog.getAdminToken(hash);
    if (token) return { kind: token.role ?? 'admin' };
    const agent = await this.catalog.agentByTokenHash(hash);
    return agent && !agent.revokedAt ? { kind: 'agent', name: agent.name } : undefined;
  }
}
