// What the cursor records at each step of a run, as plain values: a file's checkpoint (with its
// history entry, saved in the same transaction), a run's completion, a failed attempt.
import { UserError } from '../platform/errors.js';
import { redact } from '../platform/redaction.js';
import type { Cursor, Run, Slot } from './cursors.js';
import type { WrittenFile } from './file-writer.js';
import type { AttemptFailed, FileWritten } from './history.js';

/** The cursor with its lease given up. */
export const released = (cursor: Cursor): Cursor => ({ ...cursor, leaseOwner: undefined, leaseUntil: 0 });

/** A complete run: exported through its target, the initial sync done, no error standing. */
export const completed = (cursor: Cursor, run: Run): Cursor => ({ ...released(cursor), run: undefined, lastSeq: run.targetSeq, initialDone: true, lastError: undefined, lastErrorCode: undefined, lastErrorAt: undefined });

export interface CheckpointTimes {
  startedAt: number;
  now: number;
  /** When the oldest change the file carries was committed (for its lag), if known. */
  oldestCommit?: number;
  leaseMs: number;
}

/** The cursor after a file was committed under `slot`, and the file's history entry. */
export function fileCheckpoint(cursor: Cursor, run: Run, slot: Slot, file: WrittenFile, t: CheckpointTimes): { cursor: Cursor; entry: FileWritten } {
  const entry: FileWritten = {
    outcome: 'written',
    fileType: cursor.fileType,
    name: file.name,
    sequence: slot.sequence,
    ...(slot.part !== undefined ? { part: slot.part } : {}),
    kind: run.kind,
    rows: file.rows,
    bytes: file.bytes,
    startedAt: t.startedAt,
    committedAt: t.now,
    lagSeconds: t.oldestCommit === undefined ? null : Math.max(0, Math.round((t.now - t.oldestCommit) / 1000)),
  };
  const next: Cursor = {
    ...cursor,
    run: { ...cursor.run!, slot: undefined, position: file.end, files: run.files + 1, rows: run.rows + file.rows },
    lastFileSequence: slot.sequence,
    filesExported: cursor.filesExported + 1,
    rowsExported: cursor.rowsExported + file.rows,
    lastExportAt: t.now,
    leaseUntil: t.now + t.leaseMs,
  };
  return { cursor: next, entry };
}

/** A failed attempt recorded on the cursor as read now (its lease released if it is ours), and its history entry. */
export function failureRecord(fresh: Cursor, owner: string, err: Error, now: number): { cursor: Cursor; entry: AttemptFailed } {
  const code = err instanceof UserError ? err.code : 'export_failed';
  const message = redact(err.message);
  const cursor = { ...(fresh.leaseOwner === owner ? released(fresh) : fresh), lastError: message, lastErrorCode: code, lastErrorAt: now };
  return { cursor, entry: { outcome: 'failed', fileType: fresh.fileType, ...(fresh.run ? { kind: fresh.run.kind } : {}), failedAt: now, code, message } };
}
