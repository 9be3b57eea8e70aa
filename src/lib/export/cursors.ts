// Export state per (workspace, file type) in Table Storage. Every change is ETag-guarded: a worker
// that lost its lease (or raced a duplicate message) fails its next write and stops.
import type { AppStorage } from '../platform/storage.js';
import { int64, num, TABLES } from '../platform/storage.js';
import type { FileType } from '../contract/schemas.js';
import { isConflict, isNotFound } from '../platform/errors.js';
import { ExportHistory, HISTORY_PREFIX, historyEntity, type HistoryEntry } from './history.js';

/** A file name handed out once: a sequence (or a part of the initial metrics sequence) for one destination. */
export interface Slot {
  sequence: number;
  part?: number;
  /** Where the name was reserved for (account, container, path, schema version). */
  destination: string;
}

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
  /** The name reserved for the file being written (see reservation.ts); cleared by its checkpoint. */
  slot?: Slot;
  startedAt: number;
  files: number;
  rows: number;
}

export interface Cursor {
  workspaceId: number;
  fileType: FileType;
  /** Source seq_num exported through by the last finished run; changesets start after it. */
  lastSeq: number;
  /** Next file sequence to hand out; every sequence below it was reserved once and is never handed out again. */
  nextSequence: number;
  /** Sequence of the last file checkpointed (0 = none); reserved sequences may lie beyond it. */
  lastFileSequence: number;
  /** An initial sync has finished (so the next run is a changeset). */
  initialDone: boolean;
  /** The integration instance (one per create; '' = created before instances existed) and the generation of this file type it belongs to. */
  instance: string;
  generation: number;
  /**
   * People log position fixed when this generation's initial sync was planned: people deleted or
   * suppressed by then are anonymized in its files and changesets (anonymize.ts). Undefined: not yet.
   */
  anonymizeAt?: number;
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
  return { workspaceId, fileType, lastSeq: 0, nextSequence: 1, lastFileSequence: 0, initialDone: false, instance: '', generation: 0, leaseUntil: 0, filesExported: 0, rowsExported: 0 };
}

/**
 * The cursor as an integration instance and generation see it. Another generation of the same
 * integration (re-enabled sync, schema upgrade) starts over with an initial sync; another instance
 * (the integration was deleted and created again) counts as absent, its lease too. Either way the
 * file sequence (and the ETag) carry on: a name reserved before is never handed out again.
 */
export function cursorFor(c: Cursor, instance: string, generation: number): Cursor {
  if (c.instance === instance && c.generation === generation) return c;
  const fresh = { ...newCursor(c.workspaceId, c.fileType), nextSequence: c.nextSequence, instance, generation, etag: c.etag };
  if (c.instance !== instance) return fresh;
  return { ...fresh, lastFileSequence: c.lastFileSequence, filesExported: c.filesExported, rowsExported: c.rowsExported, lastExportAt: c.lastExportAt, leaseOwner: c.leaseOwner, leaseUntil: c.leaseUntil };
}

function toEntity(c: Cursor) {
  return {
    partitionKey: String(c.workspaceId),
    rowKey: c.fileType,
    lastSeq: int64(c.lastSeq),
    nextSequence: int64(c.nextSequence),
    lastFileSequence: int64(c.lastFileSequence),
    initialDone: c.initialDone,
    instance: c.instance,
    generation: c.generation,
    ...(c.anonymizeAt === undefined ? {} : { anonymizeAt: int64(c.anonymizeAt) }),
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
    // Cursors saved before reservations: the next sequence followed the last file.
    lastFileSequence: e.lastFileSequence === undefined ? Math.max(0, num(e.nextSequence) - 1) : num(e.lastFileSequence),
    initialDone: e.initialDone === true,
    instance: String(e.instance ?? ''),
    generation: num(e.generation),
    anonymizeAt: e.anonymizeAt === undefined || e.anonymizeAt === null ? undefined : num(e.anonymizeAt),
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
