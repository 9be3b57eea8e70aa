// The people state pages this process last read and wrote for a workspace, so the next request of
// the same writer need not read them again. Valid only while the people and attributes heads are
// where they were when remembered: the state is a function of the logs (records applied in seq
// order, seq-guarded), every other change of it needs a commit that moves a head, and a people
// request's commit is guarded by the heads it read. A stale ETag (another process re-applied the same
// records) only makes a write conflict, read again and retry.
import type { Page } from './people-pages.js';

/** What a lookup saw, per partition: page or marker by prefix, null for a missing page. */
export type PageNodes = Map<number, Map<string, Page | 'split' | null>>;

/** Page text kept at most, over all workspaces (characters). */
const MAX_BYTES = 64 * 1024 * 1024;
const MAX_WORKSPACES = 8;

export class RecentPages {
  private readonly entries = new Map<number, { people: number; attributes: number; nodes: PageNodes }>();

  /** The nodes remembered for the workspace at exactly these heads, else undefined. */
  at(workspaceId: number, heads: { people: number; attributes: number }): PageNodes | undefined {
    const e = this.entries.get(workspaceId);
    if (!e || e.people !== heads.people || e.attributes !== heads.attributes) return undefined;
    return e.nodes;
  }

  remember(workspaceId: number, heads: { people: number; attributes: number }, nodes: PageNodes): void {
    this.entries.delete(workspaceId);
    let bytes = 0;
    for (const partition of nodes.values()) for (const n of partition.values()) if (n && n !== 'split') bytes += n.bytes;
    if (bytes > MAX_BYTES) return;
    this.entries.set(workspaceId, { ...heads, nodes });
    for (const ws of this.entries.keys()) if (this.entries.size > MAX_WORKSPACES) this.entries.delete(ws);
  }

  forget(workspaceId: number): void {
    this.entries.delete(workspaceId);
  }
}
