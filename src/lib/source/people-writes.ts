// From state updates to page writes: which pages change, split when over their size, people too large
// for a page in entities of their own, packed into transactions Azure accepts (people-pages.ts).
import type { TransactionAction } from '@azure/data-tables';
import { INLINE_MAX, lineOf, withIds, MAX_DELTAS, OWN, ownKey, packLines, pageChars, pageKey, partitionKey, placeOf, splitPage, STORED_MAX_BYTES, unitTransactions, type Page } from './people-pages.js';
import type { PageNodes } from './people-recent.js';
import { pack, toEntity } from './people-codec.js';
import { encodeKey } from '../platform/storage.js';
import type { PersonChanges, PersonState } from './people-state.js';

/** What read() found: each person's state, the page holding it, and the ETags of own entities. */
export interface StateRead {
  states: Map<string, PersonState>;
  pages: Map<string, Page>;
  own: Map<string, string>;
  /** Every page and marker the lookups saw (remembered after a write, see people-recent.ts). */
  nodes: PageNodes;
  /** Committed changes included in `states` but not in the pages (people-recent.ts), and their number of records. */
  pending?: Map<string, PersonChanges>;
  records?: number;
}

/**
 * UTF-8 bytes of state one transaction's unit (a page, its split, its people's own entities) may carry:
 * sent as JSON strings, escaping at most doubles them, and a transaction holds 4 MiB.
 */
export const UNIT_BYTES = 1_800_000;

/**
 * The transactions that write `update` of the pending people, and the people left for the next round
 * (`deferred`: a page's unit is full; `unread`: on a sketch, `unreadPages`, that must be rewritten,
 * so read whole first). A page's changed lines are appended as deltas (a Merge) while its deltas
 * stay within its base and the entity's limits; otherwise the page is rewritten whole, and a page over
 * its size is split in its own unit (markers and children).
 */
export function planWrites(workspaceId: number, pending: string[], r: StateRead, update: (s: PersonState) => PersonState | undefined) {
  // A unit holds the page's changed lines only (its people are copied only for a rewrite; a delta's
  // node takes them in place once written, see written()). Ids in `pending` are distinct.
  const units = new Map<Page, { changes: Map<string, string>; added: number; bytes: number; chars: number; changed: number; own: TransactionAction[] }>();
  const gone: string[] = [];
  const deferred: string[] = [];
  for (const id of pending) {
    const before = r.states.get(id)!;
    const s = update(before);
    if (!s) continue;
    const page = r.pages.get(id)!;
    let unit = units.get(page);
    if (!unit) units.set(page, (unit = { changes: new Map(), added: 0, bytes: page.bytes, chars: page.chars, changed: 0, own: [] }));
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
    // Gone now, or gone for a span these records opened and closed (a replay of several requests).
    if (s.goneSince !== null || (s.goneBefore.length > 0 && s.goneBefore !== before.goneBefore)) gone.push(id);
    const value = big ? OWN : json;
    const line = page.people.get(id);
    unit.chars += line === undefined ? encodeKey(id).length + 1 + value.length + (page.chars > 0 || unit.added > 0 ? 1 : 0) : value.length - line.length;
    if (line === undefined) unit.added++;
    unit.changes.set(id, value);
    if (big) unit.own.push(ownEtag ? ['update', toEntity(pk, ownKey(id), s), 'Replace', { etag: ownEtag }] : ['create', toEntity(pk, ownKey(id), s)]);
    else if (ownEtag) unit.own.push(['delete', { partitionKey: pk, rowKey: ownKey(id) }]); // guarded by the page's ETag (same transaction)
  }
  const byPartition = new Map<number, TransactionAction[][]>();
  const nodes: WrittenNode[] = [];
  const unread: string[] = [];
  const unreadPages: Page[] = [];
  for (const [page, unit] of units) {
    const pk = partitionKey(workspaceId, page.partition);
    const key = (prefix: string) => `${pk}|${pageKey(prefix)}`;
    const actions: TransactionAction[] = [];
    const delta = page.etag && unit.chars <= pageChars(page.prefix.length) ? deltaWrite(page, unit.changes) : undefined;
    if (!delta && page.ids) {
      // A sketch cannot be rewritten (its people are not held): read whole first (the caller).
      unread.push(...unit.changes.keys());
      unreadPages.push(page);
      continue;
    }
    if (delta) {
      actions.push(['update', { partitionKey: pk, rowKey: pageKey(page.prefix), ...delta.properties }, 'Merge', { etag: page.etag }]);
      nodes.push({ partition: page.partition, prefix: page.prefix, key: key(page.prefix), page: { ...page, etag: undefined, bytes: page.bytes + delta.textBytes, chars: unit.chars, deltaBytes: page.deltaBytes + delta.bytes, deltas: page.deltas + delta.count }, changes: unit.changes });
    } else {
      const write = (prefix: string, props: Record<string, unknown>): TransactionAction => {
        const entity = { partitionKey: pk, rowKey: pageKey(prefix), ...props };
        return prefix === page.prefix && page.etag ? ['update', entity, 'Replace', { etag: page.etag }] : ['create', entity];
      };
      const people = new Map(page.people);
      for (const [id, value] of unit.changes) people.set(id, value);
      for (const node of splitPage(page.prefix, people, (id) => placeOf(id).bits)) {
        if (!node.lines) {
          actions.push(write(node.prefix, { split: true }));
          nodes.push({ partition: page.partition, prefix: node.prefix, key: key(node.prefix) });
          continue;
        }
        const base = packLines(node.lines, 'z');
        actions.push(write(node.prefix, base.properties));
        const bytes = node.lines.reduce((n, line) => n + Buffer.byteLength(line) + 1, 0);
        nodes.push({ partition: page.partition, prefix: node.prefix, key: key(node.prefix), page: { partition: page.partition, prefix: node.prefix, people: node.people!, bytes, chars: node.chars!, baseBytes: base.bytes, deltaBytes: 0, deltas: 0 } });
      }
    }
    actions.push(...unit.own);
    if (!byPartition.has(page.partition)) byPartition.set(page.partition, []);
    byPartition.get(page.partition)!.push(actions);
  }
  return { transactions: [...byPartition.values()].flatMap(unitTransactions), gone, deferred, unread, unreadPages, nodes };
}

/**
 * The changed lines as new `d` properties of the page, or undefined when the page should be rewritten
 * instead: its deltas would outgrow its base (a rewrite then costs at most what the deltas did), or
 * the entity would pass its size or property limits.
 */
function deltaWrite(page: Page, changes: Map<string, string>): { properties: Record<string, Uint8Array>; bytes: number; textBytes: number; count: number } | undefined {
  const lines: string[] = [];
  let textBytes = 0;
  for (const [id, value] of changes) {
    const line = lineOf(id, value);
    lines.push(line);
    textBytes += Buffer.byteLength(line) + 1;
  }
  const { properties, bytes, count } = packLines(lines, 'd', page.deltas);
  if (page.deltaBytes + bytes > page.baseBytes || page.baseBytes + page.deltaBytes + bytes > STORED_MAX_BYTES || page.deltas + count > MAX_DELTAS) return undefined;
  return { properties, bytes, textBytes, count };
}

/**
 * A page or marker (page undefined) as written, without its new ETag. A page written as deltas has
 * the people of the page as read, and its `changes`: they are set in that map once written.
 */
export type WrittenNode = { partition: number; prefix: string; key: string; page?: Omit<Page, 'etag'> & { etag?: undefined }; changes?: Map<string, string> };

/**
 * The nodes a lookup saw, with what was just written (and its new ETags) in their place. A delta
 * page's map of people is updated in place (not copied: a page holds hundreds): the page as read is
 * superseded here, and its ETag, kept by whoever still holds it, is stale, so a write from it conflicts.
 * Undefined when an ETag is missing: the caller then forgets these nodes.
 */
export function written(seen: PageNodes, nodes: WrittenNode[], etags: Map<string, string | undefined>): PageNodes | undefined {
  if (nodes.some((n) => n.page && !etags.get(n.key))) return undefined;
  for (const n of nodes) {
    if (n.page?.ids && n.changes) n.page.ids = withIds(n.page.ids, n.changes.keys());
    else if (n.page && n.changes) for (const [id, value] of n.changes) n.page.people.set(id, value);
    let partition = seen.get(n.partition);
    if (!partition) seen.set(n.partition, (partition = new Map())); // let go of meanwhile (people-recent.ts trimPages)
    partition.set(n.prefix, n.page ? { ...n.page, etag: etags.get(n.key) } : 'split');
  }
  return seen;
}
