// From state updates to page writes: which pages change, split when over their size, people too large
// for a page in entities of their own, packed into transactions Azure accepts (people-pages.ts).
import type { TransactionAction } from '@azure/data-tables';
import { chunked, INLINE_MAX, OWN, ownKey, pageKey, partitionKey, placeOf, splitPage, unitTransactions, type Page } from './people-pages.js';
import type { PageNodes } from './people-recent.js';
import { pack, toEntity } from './people-codec.js';
import type { PersonState } from './people-state.js';

/** What read() found: each person's state, the page holding it, and the ETags of own entities. */
export interface StateRead {
  states: Map<string, PersonState>;
  pages: Map<string, Page>;
  own: Map<string, string>;
  /** Every page and marker the lookups saw (remembered after a write, see people-recent.ts). */
  nodes: PageNodes;
}

/**
 * UTF-8 bytes of state one transaction's unit (a page, its split, its people's own entities) may carry:
 * sent as JSON strings, escaping at most doubles them, and a transaction holds 4 MiB.
 */
export const UNIT_BYTES = 1_800_000;

/**
 * The transactions that write `update` of the pending people, and the people left for the next round
 * (a page's unit is full). A page over its size is split in its own unit (markers and children).
 */
export function planWrites(workspaceId: number, pending: string[], r: StateRead, update: (s: PersonState) => PersonState | undefined) {
  const units = new Map<Page, { people: Map<string, string>; bytes: number; changed: number; own: TransactionAction[] }>();
  const gone: string[] = [];
  const deferred: string[] = [];
  for (const id of pending) {
    const s = update(r.states.get(id)!);
    if (!s) continue;
    const page = r.pages.get(id)!;
    let unit = units.get(page);
    if (!unit) units.set(page, (unit = { people: new Map(page.people), bytes: page.bytes, changed: 0, own: [] }));
    const json = JSON.stringify(pack(s));
    const pk = partitionKey(workspaceId, page.partition);
    const ownEtag = r.own.get(id);
    const big = json.length > INLINE_MAX;
    const bytes = Buffer.byteLength(json) + (big ? 1000 : 3 * id.length + 2);
    if (unit.changed > 0 && unit.bytes + bytes > UNIT_BYTES) {
      deferred.push(id);
      continue;
    }
    unit.bytes += bytes;
    unit.changed++;
    if (s.goneSince !== null) gone.push(id);
    unit.people.set(id, big ? OWN : json);
    if (big) unit.own.push(ownEtag ? ['update', toEntity(pk, ownKey(id), s), 'Replace', { etag: ownEtag }] : ['create', toEntity(pk, ownKey(id), s)]);
    else if (ownEtag) unit.own.push(['delete', { partitionKey: pk, rowKey: ownKey(id) }]); // guarded by the page's ETag (same transaction)
  }
  const byPartition = new Map<number, TransactionAction[][]>();
  const nodes: WrittenNode[] = [];
  for (const [page, unit] of units) {
    const pk = partitionKey(workspaceId, page.partition);
    const write = (prefix: string, props: Record<string, unknown>): TransactionAction => {
      const entity = { partitionKey: pk, rowKey: pageKey(prefix), ...props };
      return prefix === page.prefix && page.etag ? ['update', entity, 'Replace', { etag: page.etag }] : ['create', entity];
    };
    const split = splitPage(page.prefix, unit.people, (id) => placeOf(id).bits);
    nodes.push(...split.map((node) => ({ ...node, partition: page.partition, key: `${pk}|${pageKey(node.prefix)}` })));
    const actions = split.map((node) => write(node.prefix, node.text === undefined ? { split: true } : chunked(node.text)));
    actions.push(...unit.own);
    if (!byPartition.has(page.partition)) byPartition.set(page.partition, []);
    byPartition.get(page.partition)!.push(actions);
  }
  return { transactions: [...byPartition.values()].flatMap(unitTransactions), gone, deferred, nodes };
}

export type WrittenNode = { partition: number; key: string; prefix: string; text?: string; people?: Map<string, string> };

/** The nodes a lookup saw, with what was just written (and its new ETags) in their place. */
export function written(seen: PageNodes, nodes: WrittenNode[], etags: Map<string, string | undefined>): PageNodes | undefined {
  for (const n of nodes) {
    const etag = etags.get(n.key);
    if (n.text !== undefined && !etag) return undefined;
    const page: Page | 'split' = n.text === undefined ? 'split' : { partition: n.partition, prefix: n.prefix, etag, people: n.people!, bytes: Buffer.byteLength(n.text) };
    seen.get(n.partition)!.set(n.prefix, page);
  }
  return seen;
}
