// Export state per (workspace, file type) in Table Storage. Every change is ETag-guarded: a worker
// that lost its lease (or raced a duplicate message) fails its next write and stops.
import type { AppStorage } from '../platform/storage.js';
import { int64, num, TABLES } from '../platform/storage.js';
import type { FileType } from '../contract/schemas.js';
import { isConflict, isNotFound } from '../platform/errors.js';
import { ExportHistory, HISTORY_PREFIX, historyEntity, type HistoryEntry } from './history.js';

/** An export in progress: what it covers and how far it got (checkpointed after every file). */
export interface Run {
  /** Written into every file's metadata: a file of this name from anything else is never taken for ours. */
  id: string;
  kind: 'initial' | 'changeset';
  /** Source seq_num this run exports through (fixed when the run starts). */
  targetSeq: number;
  /** Log types: last source seq_num written to a file. Snapshot types: last person key written. */
  position: number | string;
  /** Initial metrics: the initial sync's sequence and the next part number. */
  partSequence?: number;
  nextPart?: number;
  /** Initial events: oldest timestamp included (fixed when the run starts). */
  eventsSince?: number;
  startedAt: number;
  files: number;
  rows: number;
}

export interface Cursor {
  workspaceId: number;
  fileType: FileType;
  /** Source seq_num exported through by the last finished run; changesets start after it. */
  lastSeq: number;
  /** Next file sequence; never reused. */
  nextSequence: number;
  /** An initial sync has finished (so the next run is a changeset). */
  initialDone: boolean;
  /** The integration generation of this file type the cursor belongs to (see integration/settings.ts). */
  generation: number;
  run?: Run;
  leaseOwner?: string;
  leaseUntil: number;
  filesExported: number;
  rowsExported: number;
  lastExportAt?: number;
  lastError?: string;
  lastErrorCode?: string;
  lastErrorAt?: number;
  etag?: string;
}

export function newCursor(workspaceId: number, fileType: FileType): Cursor {
  return { workspaceId, fileType, lastSeq: 0, nextSequence: 1, initialDone: false, generation: 0, leaseUntil: 0, filesExported: 0, rowsExported: 0 };
}

/** A cursor that starts over with an initial sync; its file sequence (and ETag) carry on, so no name is reused. */
export function resetCursor(c: Cursor, generation: number): Cursor {
  return {
    ...newCursor(c.workspaceId, c.fileType),
    nextSequence: c.nextSequence,
    generation,
    filesExported: c.filesExported,
    rowsExported: c.rowsExported,
    lastExportAt: c.lastExportAt,
    leaseOwner: c.leaseOwner,
    leaseUntil: c.leaseUntil,
    etag: c.etag,
  };
}

function toEntity(c: Cursor) {
  return {
    partitionKey: String(c.workspaceId),
    rowKey: c.fileType,
    lastSeq: int64(c.lastSeq),
    nextSequence: int64(c.nextSequence),
    initialDone: c.initialDone,
    generation: c.generation,
    run: c.run ? JSON.stringify(c.run) : '',
    leaseOwner: c.leaseOwner ?? '',
    leaseUntil: int64(c.leaseUntil),
    filesExported: int64(c.filesExported),
    rowsExported: int64(c.rowsExported),
    lastExportAt: int64(c.lastExportAt ?? 0),
    lastError: c.lastError ?? '',
    lastErrorCode: c.lastErrorCode ?? '',
    lastErrorAt: int64(c.lastErrorAt ?? 0),
  };
}

function fromEntity(e: Record<string, unknown>): Cursor {
  return {
    workspaceId: Number(e.partitionKey),
    fileType: e.rowKey as FileType,
    lastSeq: num(e.lastSeq),
    nextSequence: num(e.nextSequence),
    initialDone: e.initialDone === true,
    generation: num(e.generation),
    run: e.run ? (JSON.parse(String(e.run)) as Run) : undefined,
    leaseOwner: (e.leaseOwner as string) || undefined,
    leaseUntil: num(e.leaseUntil),
    filesExported: num(e.filesExported),
    rowsExported: num(e.rowsExported),
    lastExportAt: num(e.lastExportAt) || undefined,
    lastError: (e.lastError as string) || undefined,
    lastErrorCode: (e.lastErrorCode as string) || undefined,
    lastErrorAt: num(e.lastErrorAt) || undefined,
    etag: e.etag as string,
  };
}

/** Thrown when a cursor changed under us: another worker owns the pair now. */
export class CursorMoved extends Error {
  constructor() {
    super('cursor changed by another worker');
  }
}

export class Cursors {
  /** The export history kept in the same partitions (history.ts). */
  readonly history: ExportHistory;

  constructor(private readonly storage: AppStorage) {
    this.history = new ExportHistory(() => this.table);
  }

  private get table() {
    return this.storage.table(TABLES.cursors);
  }

  async get(workspaceId: number, fileType: FileType): Promise<Cursor> {
    try {
      return fromEntity(await this.table.getEntity(String(workspaceId), fileType));
    } catch (e) {
      if (isNotFound(e)) return newCursor(workspaceId, fileType);
      throw e;
    }
  }

  /** All cursors of a workspace (status, fan-out). */
  async list(workspaceId: number): Promise<Cursor[]> {
    const out: Cursor[] = [];
    // The partition also holds the export history (history.ts), whose row keys sort after every file type.
    const filter = `PartitionKey eq '${workspaceId}' and RowKey lt '${HISTORY_PREFIX.slice(0, 1)}'`;
    for await (const e of this.table.listEntities({ queryOptions: { filter } })) out.push(fromEntity(e));
    return out;
  }

  /** `workspaceId|fileType` of every pair whose lease is held at `now` (the exports running now). */
  async leased(now: number): Promise<Set<string>> {
    const out = new Set<string>();
    const filter = `leaseUntil gt ${now}L`;
    for await (const e of this.table.listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey'] } })) out.add(`${e.partitionKey}|${e.rowKey}`);
    return out;
  }

  /** DELETE of the integration: every cursor of the workspace starts over, sequences carry on. */
  async resetAll(workspaceId: number, now = Date.now()): Promise<void> {
    for (const c of await this.list(workspaceId)) {
      // An export in flight may still commit the file of its current sequence: the next run skips it.
      const inFlight = c.run !== undefined || c.leaseUntil > now;
      const reset = resetCursor(c, c.generation);
      await this.save({ ...reset, nextSequence: reset.nextSequence + (inFlight ? 1 : 0), leaseOwner: undefined, leaseUntil: 0 }).catch((e) => {
        if (!(e instanceof CursorMoved)) throw e;
      });
    }
  }

  /**
   * Writes the cursor if nobody changed it since it was read; returns it with its new ETag. A
   * history entry given with it is inserted in the same transaction: both are stored or neither.
   */
  async save(cursor: Cursor, history?: HistoryEntry): Promise<Cursor> {
    try {
      const entity = toEntity(cursor);
      if (history) {
        const r = await this.table.submitTransaction([
          cursor.etag ? ['update', entity, 'Replace', { etag: cursor.etag }] : ['create', entity],
          ['create', historyEntity(cursor.workspaceId, history)],
        ]);
        // Sub-responses come in request order; an update's carries its ETag but no row key.
        const etag = r.subResponses[0]?.etag;
        if (!etag) throw new Error('the cursor transaction answered without an ETag');
        return { ...cursor, etag };
      }
      const r = cursor.etag
        ? await this.table.updateEntity(entity, 'Replace', { etag: cursor.etag })
        : await this.table.createEntity(entity);
      return { ...cursor, etag: r.etag };
    } catch (e) {
      if (isConflict(e) || isNotFound(e)) throw new CursorMoved();
      throw e;
    }
  }
}
