// The export history (SPEC section 6): one entity per file written and per failed attempt, in the
// cursors table's workspace partition. A file's entry is inserted in the same entity-group
// transaction as the cursor checkpoint that records the file (cursors.ts), so the history can never
// disagree with the files. Row keys sort newest first; entries older than 90 days are pruned a few at a time.
import type { TableClient } from '@azure/data-tables';
import type { FileType } from '../contract/schemas.js';
import { int64, num } from '../platform/storage.js';

export const HISTORY_RETENTION_MS = 90 * 24 * 3600 * 1000;
/** Old entries deleted per pruning call: bounded work, more than one export ever adds at once. */
export const HISTORY_PRUNE_BATCH = 20;
/** A finished run prunes when the pair's file count passed a multiple of this (≤ HISTORY_PRUNE_BATCH: pruning keeps up). */
export const HISTORY_PRUNE_EVERY = 8;
/** Row keys of history entries start with this; `~` sorts after every file type, so cursors are `RowKey lt '~'`. */
export const HISTORY_PREFIX = '~history|';
const MAX_TIME = 9_999_999_999_999;

export interface FileWritten {
  outcome: 'written';
  fileType: FileType;
  name: string;
  sequence: number;
  part?: number;
  kind: 'initial' | 'changeset';
  rows: number;
  bytes: number;
  startedAt: number;
  committedAt: number;
  /** Age of the file's oldest change when it was committed (null: a snapshot of current state). */
  lagSeconds: number | null;
}

export interface AttemptFailed {
  outcome: 'failed';
  fileType: FileType;
  kind?: 'initial' | 'changeset';
  failedAt: number;
  code: string;
  message: string;
}

export type HistoryEntry = FileWritten | AttemptFailed;
export type StoredEntry = HistoryEntry & { id: string };

const at = (e: HistoryEntry) => (e.outcome === 'written' ? e.committedAt : e.failedAt);
/** Newest first: the inverted time, then what makes the entry unique. */
const inverted = (ms: number) => String(MAX_TIME - ms).padStart(13, '0');

export function historyId(e: HistoryEntry): string {
  const what = e.outcome === 'written' ? `${String(e.sequence).padStart(20, '0')}${e.part !== undefined ? `-${e.part}` : ''}` : `failed-${Math.random().toString(36).slice(2, 10)}`;
  return `${inverted(at(e))}|${e.fileType}|${what}`;
}

/** An id (as returned in `next`) is the row key without its prefix. */
export const isHistoryId = (s: string) => /^\d{13}\|[a-z]+\|[a-z0-9-]+$/.test(s);

export function historyEntity(workspaceId: number, e: HistoryEntry) {
  const common = { partitionKey: String(workspaceId), rowKey: HISTORY_PREFIX + historyId(e), outcome: e.outcome, fileType: e.fileType, kind: e.kind ?? '' };
  if (e.outcome === 'failed') return { ...common, failedAt: int64(e.failedAt), code: e.code, message: e.message };
  return {
    ...common,
    name: e.name,
    sequence: int64(e.sequence),
    part: e.part ?? -1,
    rows: int64(e.rows),
    bytes: int64(e.bytes),
    startedAt: int64(e.startedAt),
    committedAt: int64(e.committedAt),
    lagSeconds: e.lagSeconds ?? -1,
  };
}

function fromEntity(e: Record<string, unknown>): StoredEntry {
  const id = String(e.rowKey).slice(HISTORY_PREFIX.length);
  const fileType = e.fileType as FileType;
  const kind = e.kind ? (e.kind as 'initial' | 'changeset') : undefined;
  if (e.outcome === 'failed') return { id, outcome: 'failed', fileType, ...(kind ? { kind } : {}), failedAt: num(e.failedAt), code: String(e.code), message: String(e.message) };
  const part = num(e.part);
  const lag = num(e.lagSeconds);
  return {
    id,
    outcome: 'written',
    fileType,
    name: String(e.name),
    sequence: num(e.sequence),
    ...(part >= 0 ? { part } : {}),
    kind: kind ?? 'changeset',
    rows: num(e.rows),
    bytes: num(e.bytes),
    startedAt: num(e.startedAt),
    committedAt: num(e.committedAt),
    lagSeconds: lag >= 0 ? lag : null,
  };
}

export interface HistoryQuery {
  fileType?: FileType;
  limit: number;
  /** An entry id (older entries follow it) or a time in ms (entries before it). */
  before?: string | number;
}

export class ExportHistory {
  constructor(private readonly table: () => TableClient) {}

  /** Newest first; `next` is the id to pass as `before` for the following page (null at the end). */
  async list(workspaceId: number, q: HistoryQuery): Promise<{ entries: StoredEntry[]; next: string | null }> {
    const from = q.before === undefined ? HISTORY_PREFIX : HISTORY_PREFIX + (typeof q.before === 'number' ? inverted(q.before - 1) : q.before);
    const after = q.before === undefined || typeof q.before === 'number' ? 'ge' : 'gt';
    let filter = `PartitionKey eq '${workspaceId}' and RowKey ${after} '${from}' and RowKey lt '${HISTORY_PREFIX}~'`;
    if (q.fileType) filter += ` and fileType eq '${q.fileType}'`;
    const entries: StoredEntry[] = [];
    let more = false;
    for await (const e of this.table().listEntities({ queryOptions: { filter } })) {
      if (entries.length === q.limit) {
        more = true;
        break;
      }
      entries.push(fromEntity(e));
    }
    return { entries, next: more ? entries[entries.length - 1].id : null };
  }

  /** Deletes up to HISTORY_PRUNE_BATCH entries older than the retention (best effort, bounded). */
  async prune(workspaceId: number, now: number): Promise<number> {
    const filter = `PartitionKey eq '${workspaceId}' and RowKey gt '${HISTORY_PREFIX}${inverted(now - HISTORY_RETENTION_MS)}' and RowKey lt '${HISTORY_PREFIX}~'`;
    const old: string[] = [];
    for await (const e of this.table().listEntities({ queryOptions: { filter, select: ['RowKey'] } })) {
      old.push(String(e.rowKey));
      if (old.length === HISTORY_PRUNE_BATCH) break;
    }
    if (old.length) await this.table().submitTransaction(old.map((rowKey) => ['delete', { partitionKey: String(workspaceId), rowKey }]));
    return old.length;
  }
}
