// Where the people state is stored: pages of people spread by a hash of the person id, so one
// request reads and writes a few entities per partition instead of one per person, and a
// workspace's state spans PARTITIONS partitions instead of one (Azure: ~2,000 entities/s each).
//
// A person's place: md5(id) → 32 bits; the low 4 pick the partition (`<ws>|<hex>`), the other 28,
// read lowest first as a '0'/'1' string, are its `bits`. A partition is a binary trie of pages: the
// page `g|<prefix>` holds every person whose bits start with `prefix`. A page over pageChars(depth) is
// split in one entity-group transaction (same partition): it becomes a marker (`split`) and its two
// children `g|<prefix>0`, `g|<prefix>1` are created (deeper too, with markers, if one is still over), so a reader sees the people of a prefix either in
// the page or in its children, never half. Leaves in RowKey order are the people in (bits, id) order
// (the snapshot's order). A person whose state is over INLINE_MAX characters is its own entity
// (`p|<sha256 of id>`, the page holds 0 for it), so a page stays small whatever one person holds.
import { createHash } from 'node:crypto';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { decodeKey, encodeKey } from '../platform/storage.js';
import { AZURE_LIMITS, batchOperationBytes } from '../platform/azure-limits.js';
import { isNotFound, SystemError } from '../platform/errors.js';

export const PARTITIONS = 16;
export const BITS = 28;
/**
 * A page at depth d is split when its text is over pageChars(d): PAGE_MAX_CHARS at the root (an
 * entity holds 1 MiB of UTF-16), halving every two levels down to PAGE_MIN_CHARS. A small workspace
 * keeps a few large pages (few operations per request); a large one many small pages (a changed
 * person rewrites a small page): a partition of S characters has pages of about PAGE_MAX_CHARS² / S.
 */
export const PAGE_MAX_CHARS = 240_000;
export const PAGE_MIN_CHARS = 4_000;
export const pageChars = (depth: number) => Math.max(PAGE_MIN_CHARS, Math.floor(PAGE_MAX_CHARS / 2 ** (depth / 2)));
/** A person whose packed state is longer than this is kept in an entity of its own. */
export const INLINE_MAX = 4_000;
/** Characters per property (a property holds at most 64 KiB, UTF-16). */
export const CHUNK_CHARS = 30_000;
/** A page's entry for a person with an entity of its own. */
export const OWN = '0';

export interface Place {
  partition: number;
  bits: string;
}

export function placeOf(id: string): Place {
  const h = createHash('md5').update(id).digest().readUInt32LE(0);
  let bits = '';
  for (let i = 4; i < 32; i++) bits += (h >>> i) & 1;
  return { partition: h & (PARTITIONS - 1), bits };
}

export const partitionKey = (workspaceId: number, partition: number) => `${workspaceId}|${partition.toString(16)}`;
export const pageKey = (prefix: string) => `g|${prefix}`;
/** A hash, not the id: an id may take the whole RowKey (512 characters encoded, ingest-schemas.ts). */
export const ownKey = (id: string) => `p|${createHash('sha256').update(id).digest('base64url')}`;
/** RowKeys of pages sort between these (markers too); own entities (`p|`) after them. */
export const PAGES_FROM = 'g|';
export const PAGES_UNTIL = 'g}';

/**
 * A page as read: `people` maps id → its packed state as JSON text, or OWN when the person has an
 * entity of its own. Stored as lines `<encoded id>\t<JSON>` (an encoded id and JSON text hold no tab
 * or newline), so a page is split into people without parsing anyone's state.
 */
export interface Page {
  partition: number;
  prefix: string;
  /** Undefined: the page does not exist yet (an empty partition's root). */
  etag?: string;
  people: Map<string, string>;
  /** UTF-8 bytes of its text. */
  bytes: number;
}

export function joinChunks(e: Record<string, unknown>, name = 'j'): string {
  let json = '';
  for (let i = 0; typeof e[`${name}${i}`] === 'string'; i++) json += e[`${name}${i}`] as string;
  return json;
}

export function chunked(json: string, name = 'j'): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i * CHUNK_CHARS < json.length; i++) out[`${name}${i}`] = json.slice(i * CHUNK_CHARS, (i + 1) * CHUNK_CHARS);
  return out;
}

export function pageOf(partition: number, e: Record<string, unknown>): Page | 'split' {
  if (e.split === true) return 'split';
  const text = joinChunks(e);
  const people = new Map<string, string>();
  if (text) {
    for (const line of text.split('\n')) {
      const tab = line.indexOf('\t');
      people.set(decodeKey(line.slice(0, tab)), line.slice(tab + 1));
    }
  }
  return { partition, prefix: String(e.rowKey).slice(PAGES_FROM.length), etag: e.etag as string, people, bytes: Buffer.byteLength(text) };
}

/** Depth of the last leaf found per (workspace, partition): where the next lookup starts. */
const hints = new Map<string, number>();

/**
 * The leaf pages holding `targets` (bits strings) in one partition: starts at the hinted depth, goes
 * deeper at a marker and shallower at a missing page. An empty partition answers its root, absent.
 */
export async function findLeaves(
  table: TableClient,
  workspaceId: number,
  partition: number,
  targets: Iterable<string>,
  /** What was seen before (still valid): read only what is not in it; what is read is added. */
  seen = new Map<string, Page | 'split' | null>(),
): Promise<Map<string, Page>> {
  const pk = partitionKey(workspaceId, partition);
  const hintKey = `${workspaceId}|${partition}`;
  const depth = new Map<string, number>();
  for (const t of targets) depth.set(t, Math.min(hints.get(hintKey) ?? 0, t.length));
  const out = new Map<string, Page>();
  const absentRoot: Page = { partition, prefix: '', people: new Map(), bytes: 0 };
  for (let round = 0; depth.size > 0; round++) {
    if (round > 2 * BITS + 8) throw new SystemError('people_pages_moving', 'people state pages kept changing during a lookup; retry');
    const wanted = new Set([...depth].map(([t, d]) => t.slice(0, d)).filter((p) => !seen.has(p)));
    await Promise.all(
      [...wanted].map(async (prefix) => {
        try {
          seen.set(prefix, pageOf(partition, (await table.getEntity(pk, pageKey(prefix))) as Record<string, unknown>));
        } catch (e) {
          if (!isNotFound(e)) throw e;
          seen.set(prefix, null);
        }
      }),
    );
    for (const [t, d] of depth) {
      const page = seen.get(t.slice(0, d));
      if (page === 'split') {
        // A child missing in what we saw was read before this split: read it again.
        if (seen.get(t.slice(0, d + 1)) === null) seen.delete(t.slice(0, d + 1));
        depth.set(t, d + 1);
      } else if (page === null && d > 0) {
        depth.set(t, d - 1);
      } else {
        out.set(t, page ?? absentRoot);
        hints.set(hintKey, d);
        depth.delete(t);
      }
    }
  }
  if (hints.size > 100_000) hints.clear();
  return out;
}

/**
 * A page's people as leaves of at most pageChars(depth) (split by the next bit, as many levels as needed),
 * in key order; a node split on the way is a marker (json undefined), so every level can be walked.
 */
export function splitPage(prefix: string, people: Map<string, string>, bitsOf: (id: string) => string): { prefix: string; text?: string; people?: Map<string, string> }[] {
  const lines: string[] = [];
  for (const [id, v] of people) lines.push(`${encodeKey(id)}\t${v}`);
  const text = lines.join('\n');
  if (text.length <= pageChars(prefix.length) || prefix.length >= BITS) return [{ prefix, text, people }];
  const halves = [new Map<string, string>(), new Map<string, string>()];
  for (const [id, v] of people) halves[bitsOf(id)[prefix.length] === '1' ? 1 : 0].set(id, v);
  return [{ prefix }, ...splitPage(`${prefix}0`, halves[0], bitsOf), ...splitPage(`${prefix}1`, halves[1], bitsOf)];
}

/**
 * One partition's units (actions that must commit together: a page, its split, its people's own
 * entities) packed into entity-group transactions Azure accepts (100 operations, 4 MiB).
 */
export function unitTransactions(units: TransactionAction[][]): TransactionAction[][] {
  const budget = AZURE_LIMITS.batchBytes - 64 * 1024;
  const out: TransactionAction[][] = [];
  let current: TransactionAction[] = [];
  let bytes = 0;
  for (const unit of units) {
    const size = unit.reduce((n, a) => n + batchOperationBytes(a[1] as Parameters<typeof batchOperationBytes>[0]), 0);
    if (unit.length > AZURE_LIMITS.batchOperations || size > budget) throw new SystemError('people_page_unit_too_large', `a people state page write needs ${unit.length} operations, ${size} bytes`);
    if (current.length > 0 && (current.length + unit.length > AZURE_LIMITS.batchOperations || bytes + size > budget)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(...unit);
    bytes += size;
  }
  if (current.length > 0) out.push(current);
  return out;
}
