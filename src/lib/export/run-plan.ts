// Deciding what a run covers, fixed in the cursor before any file is written: an initial sync
// (the whole log, or a snapshot of the people state for People/Attributes; metrics as parts of one
// sequence; events from a 30-day window) or a changeset from the last exported position to the
// source head. Nothing to export: no run.
import { randomUUID } from 'node:crypto';
import type { FileType } from '../contract/schemas.js';
import type { SourceLog } from '../source/source-log.js';
import type { PeopleState } from '../source/people-state.js';
import type { Cursor, Cursors, Run } from './cursors.js';
import { ownerColumn } from './anonymize.js';

export const EVENTS_INITIAL_WINDOW_MS = 30 * 24 * 3600 * 1000;

/** Their initial sync is a snapshot of the people state; their changesets come from the log. */
export const SNAPSHOT_TYPES: readonly FileType[] = ['people', 'attributes'];

export async function planRun(deps: { source: SourceLog; people: PeopleState }, cursor: Cursor, now: number): Promise<Run | undefined> {
  const base = { id: randomUUID(), startedAt: now, files: 0, rows: 0 };
  if (!cursor.initialDone) {
    if (SNAPSHOT_TYPES.includes(cursor.fileType)) {
      const heads = await deps.people.catchUp(cursor.workspaceId);
      const head = cursor.fileType === 'people' ? heads.people : heads.attributes;
      return { kind: 'initial', targetSeq: head.seq, position: '', ...base };
    }
    const head = await deps.source.head(cursor.workspaceId, cursor.fileType);
    return {
      kind: 'initial',
      targetSeq: head.seq,
      position: 0,
      ...(cursor.fileType === 'metrics' ? { partSequence: cursor.nextSequence, nextPart: 1 } : {}),
      ...(cursor.fileType === 'events' ? { eventsSince: now - EVENTS_INITIAL_WINDOW_MS } : {}),
      ...base,
    };
  }
  const head = await deps.source.head(cursor.workspaceId, cursor.fileType);
  if (head.seq <= cursor.lastSeq) return undefined;
  return { kind: 'changeset', targetSeq: head.seq, position: cursor.lastSeq, ...base };
}

/** Whether the run is read from the source log in sequence order (everything but snapshots). */
export function isLogRun(fileType: FileType, run: Run): boolean {
  return !SNAPSHOT_TYPES.includes(fileType) || run.kind === 'changeset';
}

/**
 * The run an invocation works on, saved in the cursor with the lease (one write; a cursor without a
 * run has nothing to do, and is not written): a new run when none is in progress; for an initial
 * sync, the anonymization position fixed; a resumed log run extended to the source head.
 * `leased` is the cursor as read, with this worker's lease set but not saved.
 */
export async function decideRun(deps: { cursors: Cursors; source: SourceLog; people: PeopleState; clock: { now(): number } }, leased: Cursor): Promise<Cursor | undefined> {
  let cursor = leased;
  if (!cursor.run) {
    const run = await planRun(deps, cursor, deps.clock.now());
    if (!run) return undefined;
    cursor = { ...cursor, run, ...(run.partSequence !== undefined ? { nextSequence: cursor.nextSequence + 1 } : {}) };
  } else if (isLogRun(cursor.fileType, cursor.run)) {
    // A resumed log run (after a failure or a continuation) also takes what arrived since it
    // started: its files are cut from `position` on, so a later target changes nothing already written.
    const head = await deps.source.head(cursor.workspaceId, cursor.fileType);
    if (head.seq > cursor.run.targetSeq) cursor = { ...cursor, run: { ...cursor.run, targetSeq: head.seq } };
  }
  if (cursor.run!.kind === 'initial' && cursor.anonymizeAt === undefined && ownerColumn(cursor.fileType)) {
    // "Deleted before the first sync", fixed for this generation: the people log as of now, after
    // the people state caught up (so a deletion committed just before counts). Also fixes it for
    // an initial run planned before this rule existed.
    const heads = await deps.people.catchUp(cursor.workspaceId);
    cursor = { ...cursor, anonymizeAt: heads.people.seq };
  }
  return deps.cursors.save(cursor);
}
