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
import crypto, { createHash } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { decodeKey, encodeKey } from '../platform/storage.js';
import { AZURE_LIMITS, batchOperationBytes } from '../platform/azure-limits.js';
import { isNotFound, SystemError } from '../platform/errors.js';

export const PARTITIONS = 16;
export const BITS = 28;
/**
 * A page at depth d is split when its text is over pageChars(d): PAGE_MAX_CHARS at the root (an
 * entity holds 1 MiB of UTF-16), halving every three levels down to PAGE_MIN_CHARS. A small workspace
 * keeps a few large pages (few operations per request); a large one smaller pages (a lookup of a
 * person not in memory reads less): a partition of S characters has pages of about
 * PAGE_MAX_CHARS · √(PAGE_MAX_CHARS / S). A change is a delta whatever the page's size, but a state
 * write touches every page with a pending person: halving every two levels (PAGE_MAX_CHARS² / S)
 * made a backfill write 4× as many pages at every doubling of the workspace (with no memory bound,
 * people ingest fell from ~18,000 to ~2,700 people/s between 50,000 and 400,000 people; with this
 * size it held 10,800–18,400: README, "the cost of a large workspace").
 */
export const PAGE_MAX_CHARS = 240_000;
export const PAGE_MIN_CHARS = 4_000;
export const pageChars = (depth: number) => Math.max(PAGE_MIN_CHARS, Math.floor(PAGE_MAX_CHARS / 2 ** (depth / 3)));
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

/** Byte b as 8 characters, lowest bit first. */
const BYTE_BITS = Array.from({ length: 256 }, (_, b) => Array.from({ length: 8 }, (_, i) => (b >>> i) & 1).join(''));
/** md5 of the id as hex: one-shot where Node has it (a third of the cost of a Hash object per id). */
const md5hex: (id: string) => string = typeof crypto.hash === 'function' ? (id) => crypto.hash('md5', id) : (id) => createHash('md5').update(id).digest('hex');

export function placeOf(id: string): Place {
  const hex = md5hex(id);
  // The digest's first 4 bytes as a little-endian 32-bit number.
  const h = parseInt(hex.slice(6, 8) + hex.slice(4, 6) + hex.slice(2, 4) + hex.slice(0, 2), 16);
  // Bits 4..31 of h, lowest first.
  const bits = BYTE_BITS[(h >>> 4) & 0xff] + BYTE_BITS[(h >>> 12) & 0xff] + BYTE_BITS[(h >>> 20) & 0xff] + BYTE_BITS[h >>> 28].slice(0, 4);
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
 * or newline), so a page is split into people without parsing anyone's state, in groups of whole
 * lines of at most GROUP_BYTES, each deflated into a binary property: the base in `z0, z1, …` (pages
 * written before: text in `j0, j1, …`, cut every CHUNK_CHARS), then **deltas** in `d0, d1, …` (a later
 * line for the same person replacing an earlier one). A write that changes some of a page's people
 * appends their lines as new `d` properties (a Merge, If-Match the page's ETag) instead of rewriting
 * the page; a write that would let the deltas outgrow the base (or the entity its limits) rewrites
 * the page whole (Replace: base only), so the bytes written stay within a small factor of the change.
 */
export interface Page {
  partition: number;
  prefix: string;
  /** Undefined: the page does not exist yet (an empty partition's root). */
  etag?: string;
  people: Map<string, string>;
  /** UTF-8 bytes of its text (base and deltas: at least those of its people's lines). */
  bytes: number;
  /** Characters of its people's lines, each once (the text a rewrite would write). */
  chars: number;
  /** What the entity holds, in bytes as Azure counts them: the base and the deltas; and the number of `d` properties. */
  baseBytes: number;
  deltaBytes: number;
  deltas: number;
  /**
   * Set on a page whose people are not held (a sketch, people-recent.ts trimPages): idHash of each of
   * its people's ids, sorted; `people` is then empty. A person whose hash is not in it is not in the
   * page, so a lookup of new people reads nothing and a write appends their lines as deltas (the
   * ETag and sizes are known); a person whose hash is in it has the page read whole (state.read).
   */
  ids?: Uint32Array;
}

/** FNV-1a of the id's UTF-16 units: a page's sketch (Page.ids) holds it for each of its people. */
export function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Whether the sketch's hashes (sorted) may hold the id: false only when the id is surely not among them. */
export function mayHold(ids: Uint32Array, id: string): boolean {
  const h = idHash(id);
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid] < h) lo = mid + 1;
    else hi = mid;
  }
  return lo < ids.length && ids[lo] === h;
}

/** The hashes with these ids' added, sorted (a new array: the old one may still be held elsewhere). */
export function withIds(ids: Uint32Array, added: Iterable<string>): Uint32Array {
  const more = Array.from(added, idHash);
  const out = new Uint32Array(ids.length + more.length);
  out.set(ids);
  out.set(more, ids.length);
  return out.sort();
}

/** A page's sketch: its ETag and sizes, its ids' hashes, not its people (see Page.ids). */
export function sketchOf(page: Page): Page {
  return { ...page, people: new Map(), ids: page.ids ?? withIds(new Uint32Array(0), page.people.keys()) };
}

/** An empty page (an empty partition's root, absent). */
export const emptyPage = (partition: number, prefix = ''): Page => ({ partition, prefix, people: new Map(), bytes: 0, chars: 0, baseBytes: 0, deltaBytes: 0, deltas: 0 });

/**
 * Bytes a page entity holds at most, base and deltas (1 MiB less room for names and keys). A base of
 * pageChars(0) characters takes at most 720,000 (3 UTF-8 bytes a UTF-16 unit, deflate adds a few).
 */
export const STORED_MAX_BYTES = 960_000;
/** `d` properties a page entity holds at most (an entity has 252; the base takes at most 13). */
export const MAX_DELTAS = 200;
/** UTF-8 bytes of lines per deflated property (a binary property holds 64 KiB; deflate adds at most a few bytes). */
export const GROUP_BYTES = 60_000;

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

/**
 * Lines as binary properties `<name><first>, <name><first+1>, …`: groups of whole lines of at most
 * GROUP_BYTES (a line is at most INLINE_MAX characters and an id), each deflated. Returns them and their bytes.
 */
export function packLines(lines: string[], name: 'z' | 'd', first = 0): { properties: Record<string, Uint8Array>; bytes: number; count: number } {
  const properties: Record<string, Uint8Array> = {};
  let n = first;
  let bytes = 0;
  let group: string[] = [];
  let groupBytes = 0;
  const flush = () => {
    const packed = deflateRawSync(group.join('\n'), { level: 1 });
    properties[`${name}${n++}`] = packed;
    bytes += packed.byteLength;
    group = [];
    groupBytes = 0;
  };
  for (const line of lines) {
    const size = Buffer.byteLength(line) + 1;
    if (group.length > 0 && groupBytes + size > GROUP_BYTES) flush();
    group.push(line);
    groupBytes += size;
  }
  if (group.length > 0) flush();
  return { properties, bytes, count: n - first };
}

/** The text of deflated properties `<name>0, <name>1, …` (groups of whole lines), their count and stored bytes. */
function unpackLines(e: Record<string, unknown>, name: 'z' | 'd', people: Map<string, string>, lines: { chars: number }): { bytes: number; stored: number; count: number } {
  let bytes = 0;
  let stored = 0;
  let count = 0;
  for (; e[`${name}${count}`] instanceof Uint8Array; count++) {
    const packed = e[`${name}${count}`] as Uint8Array;
    const buffer = inflateRawSync(packed);
    readLines(buffer.toString('utf8'), people, lines);
    bytes += buffer.byteLength + 1;
    stored += packed.byteLength;
  }
  return { bytes, stored, count };
}

export const lineOf = (id: string, value: string) => `${encodeKey(id)}\t${value}`;

/**
 * Reads lines into `people` (a later line for a person replaces an earlier one), adding to
 * `lines.chars` the characters of each person's line and its newline, each person once (an id's
 * encoded key has the same length in every line of it).
 */
function readLines(text: string, people: Map<string, string>, lines: { chars: number }): void {
  for (let start = 0; start < text.length; ) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const tab = text.indexOf('\t', start);
    const key = text.slice(start, tab);
    const id = key.indexOf('%') < 0 ? key : decodeKey(key);
    const value = text.slice(tab + 1, end);
    const before = people.get(id);
    lines.chars += before === undefined ? end - start + 1 : value.length - before.length;
    people.set(id, value);
    start = end + 1;
  }
}

export function pageOf(partition: number, e: Record<string, unknown>): Page | 'split' {
  if (e.split === true) return 'split';
  const people = new Map<string, string>();
  const lines = { chars: -1 };
  let bytes: number;
  let baseBytes: number;
  if (e.z0 instanceof Uint8Array) {
    const base = unpackLines(e, 'z', people, lines);
    bytes = base.bytes;
    baseBytes = base.stored;
  } else {
    const text = joinChunks(e); // written before pages were deflated
    readLines(text, people, lines);
    bytes = Buffer.byteLength(text);
    baseBytes = 2 * text.length;
  }
  const deltas = unpackLines(e, 'd', people, lines);
  return { partition, prefix: String(e.rowKey).slice(PAGES_FROM.length), etag: e.etag as string, people, bytes: bytes + deltas.bytes, chars: Math.max(0, lines.chars), baseBytes, deltaBytes: deltas.stored, deltas: deltas.count };
}

/**
 * What a lookup knows of a trie node: the page as read or written, a marker (`split`), a page known
 * to exist whose content is not held (`leaf`: evicted from memory, people-recent.ts), or null (no
 * such page when looked at).
 */
export type PageNode = Page | 'split' | 'leaf' | null;

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
  seen = new Map<string, PageNode>(),
): Promise<Map<string, Page>> {
  const pk = partitionKey(workspaceId, partition);
  const hintKey = `${workspaceId}|${partition}`;
  const depth = new Map<string, number>();
  for (const t of targets) depth.set(t, Math.min(hints.get(hintKey) ?? 0, t.length));
  const out = new Map<string, Page>();
  const absentRoot = emptyPage(partition);
  for (let round = 0; depth.size > 0; round++) {
    if (round > 2 * BITS + 8) throw new SystemError('people_pages_moving', 'people state pages kept changing during a lookup; retry');
    // A target whose node at its depth was not seen, under a page that was (a leaf: the hint is
    // deeper than this branch of the trie), is in that page: no read (it would answer 404). Under a
    // leaf not held, it reads that leaf.
    for (const [t, d] of depth) {
      if (seen.has(t.slice(0, d))) continue;
      for (let k = d - 1; k >= 0; k--) {
        const above = seen.get(t.slice(0, k));
        if (above === null) continue;
        if (above !== undefined && above !== 'split') depth.set(t, k);
        break;
      }
    }
    const unknown = (p: string) => {
      const n = seen.get(p);
      return n === undefined || n === 'leaf';
    };
    const wanted = new Set([...depth].map(([t, d]) => t.slice(0, d)).filter(unknown));
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
      } else if (page === 'leaf') {
        continue; // read in the next round
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
 * Each person's line and bits are computed once, whatever the depth.
 */
export function splitPage(prefix: string, people: Map<string, string>, bitsOf: (id: string) => string): { prefix: string; lines?: string[]; chars?: number; people?: Map<string, string> }[] {
  const ids: string[] = [];
  const lines: string[] = [];
  let chars = -1;
  for (const [id, v] of people) {
    const line = lineOf(id, v);
    ids.push(id);
    lines.push(line);
    chars += line.length + 1;
  }
  chars = Math.max(0, chars);
  if (chars <= pageChars(prefix.length) || prefix.length >= BITS) return [{ prefix, lines, chars, people }];
  const bits = ids.map(bitsOf);
  const out: ReturnType<typeof splitPage> = [];
  const node = (prefix: string, members: number[], chars: number): void => {
    if (chars <= pageChars(prefix.length) || prefix.length >= BITS) {
      out.push({ prefix, lines: members.map((i) => lines[i]), chars, people: new Map(members.map((i) => [ids[i], people.get(ids[i])!])) });
      return;
    }
    out.push({ prefix });
    const halves: [number[], number[]] = [[], []];
    const halfChars = [-1, -1];
    for (const i of members) {
      const h = bits[i][prefix.length] === '1' ? 1 : 0;
      halves[h].push(i);
      halfChars[h] += lines[i].length + 1;
    }
    node(`${prefix}0`, halves[0], Math.max(0, halfChars[0]));
    node(`${prefix}1`, halves[1], Math.max(0, halfChars[1]));
  };
  node(prefix, ids.map((_, i) => i), chars);
  return out;
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
