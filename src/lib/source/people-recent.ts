// What this process holds of a workspace's people state between a writer's requests, so the next
// request of the same writer need not read it again nor write it at once:
// - the pages as stored (`nodes`: as this process last read or wrote them, with their ETags), and
// - the changes its commits made since (`pending`: log records already committed, not yet in the pages).
// Valid only while the people and attributes heads are exactly where its last commit left them: the
// state is a function of the logs (records applied in seq order, seq-guarded), every other change of
// it needs a commit that moves a head, and a people request's commit is guarded by the heads it read.
// The heads' stateSeq stays below the pending records until they are written (catchUp replays them
// from the logs in any other process, or after a crash). A stale ETag (another process applied the
// same records) only makes a write conflict, read again and retry.
import { sketchOf, type Page, type PageNode } from './people-pages.js';
import type { PersonChanges } from './people-state.js';
import type { Head } from './source-log.js';

/** What lookups saw, per partition: page, marker, leaf not held, or null for a missing page, by prefix. */
export type PageNodes = Map<number, Map<string, PageNode>>;

export interface Remembered {
  /** The heads (seq) the pages and the pending changes together reflect. */
  people: number;
  attributes: number;
  nodes: PageNodes;
  /** Committed changes not yet written to the pages, by person, in seq order. */
  pending: Map<string, PersonChanges>;
  /** Records in `pending`. */
  records: number;
  /**
   * The heads as this process's last commit (or its markApplied) wrote them, with their ETags: its
   * next request may start from them without reading, since its commit is guarded by those ETags.
   */
  heads?: { people: Head; attributes: Head };
}

/**
 * Memory kept at most, over all workspaces: page text (characters) and pending records (estimated).
 * The default of PEOPLE_STATE_MEMORY_MB (a quarter of the deployed 256 MiB heap).
 */
export const RECENT_MAX_BYTES = 64 * 1024 * 1024;
export const PENDING_RECORD_BYTES = 300;
/** A node's entry (prefix, map slot), page or not, estimated. */
export const NODE_BYTES = 100;
/** A sketch beyond its hashes: the page object, an empty map, the typed array (measured: 100–700 bytes). */
export const SKETCH_BYTES = 700;
const MAX_WORKSPACES = 8;

/** Whether a node is a page, its people held or only its sketch (not a marker, a leaf let go of, or a missing page). */
export const isPage = (n: PageNode | undefined): n is Page => n !== undefined && n !== null && n !== 'split' && n !== 'leaf';

/** Whether a node is a page whose people are held (not only its sketch). */
export const held = (n: PageNode | undefined): boolean => isPage(n) && n.ids === undefined;

/** The memory a node takes (estimated): its entry, and its page's text or its sketch's hashes. */
const nodeBytes = (n: PageNode): number => NODE_BYTES + (isPage(n) ? (n.ids ? SKETCH_BYTES + n.ids.byteLength : n.bytes) : 0);

/** The memory an entry takes (estimated): its nodes, its pages' text and its pending records. */
export function rememberedBytes(nodes: PageNodes, records: number): number {
  let bytes = records * PENDING_RECORD_BYTES;
  for (const partition of nodes.values()) for (const n of partition.values()) bytes += nodeBytes(n);
  return bytes;
}

/**
 * Lets go of pages until the entry takes at most `max` bytes: first of their people (a page becomes
 * its sketch, 4 bytes a person: new people still need no read, people-pages.ts Page.ids), then of
 * their sketches (a `leaf` not held: the next lookup of one of its people reads it); if its markers
 * alone are over, of all its nodes. A workspace larger than memory keeps as much of its state as
 * fits, not nothing: a request then reads only the pages it does not hold. Returns the bytes the entry takes.
 */
export function trimPages(nodes: PageNodes, records: number, max: number): number {
  let bytes = rememberedBytes(nodes, records);
  for (const people of [true, false]) {
    for (const partition of nodes.values()) {
      if (bytes <= max) break;
      for (const [prefix, n] of partition) {
        if (bytes <= max) break;
        if (!isPage(n) || held(n) !== people) continue;
        const next = people ? sketchOf(n) : 'leaf';
        partition.set(prefix, next);
        bytes -= nodeBytes(n) - nodeBytes(next);
      }
    }
  }
  if (bytes > max) {
    nodes.clear();
    bytes = rememberedBytes(nodes, records);
  }
  return bytes;
}

export class RecentPages {
  /** In the order remembered (the oldest first: evicted first). */
  private readonly entries = new Map<number, Remembered & { bytes: number }>();

  constructor(readonly maxBytes = RECENT_MAX_BYTES) {}

  /** What is remembered for the workspace at exactly these heads, else undefined. */
  at(workspaceId: number, heads: { people: number; attributes: number }): Remembered | undefined {
    const e = this.entries.get(workspaceId);
    if (!e || e.people !== heads.people || e.attributes !== heads.attributes) return undefined;
    return e;
  }

  /** What is remembered for the workspace with the heads as written (see `heads`), if any. */
  latest(workspaceId: number): Remembered | undefined {
    const e = this.entries.get(workspaceId);
    return e?.heads ? e : undefined;
  }

  /**
   * Remembers the entry, its pages trimmed to maxBytes (nothing if its pending records alone are
   * over), evicting the workspaces remembered longest ago until all of them fit maxBytes and MAX_WORKSPACES.
   */
  remember(workspaceId: number, at: { people: number; attributes: number; heads?: Remembered['heads'] }, nodes: PageNodes, pending = new Map<string, PersonChanges>(), records = 0): void {
    this.entries.delete(workspaceId);
    if (records * PENDING_RECORD_BYTES > this.maxBytes) return;
    const bytes = trimPages(nodes, records, this.maxBytes);
    let total = bytes;
    for (const e of this.entries.values()) total += e.bytes;
    for (const [ws, e] of this.entries) {
      if (total <= this.maxBytes && this.entries.size < MAX_WORKSPACES) break;
      this.entries.delete(ws);
      total -= e.bytes;
    }
    this.entries.set(workspaceId, { people: at.people, attributes: at.attributes, heads: at.heads, nodes, pending, records, bytes });
  }

  forget(workspaceId: number): void {
    this.entries.delete(workspaceId);
  }

  /** Bytes remembered over all workspaces (tests). */
  get bytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.bytes;
    return total;
  }
}
