// File names are handed out once, ever (SPEC 5.6). Before a file's first block is staged, its name
// is reserved in the cursor (ETag-guarded): a slot, that is a sequence (or the next part of the
// initial metrics sequence) for one destination, and the cursor moves past it. A retry of the same
// run reuses its slot and takes over the file it finds committed there; a new run, generation or
// instance, or the same run at another destination, gets a new slot. A worker that lost the pair
// cannot reserve (its ETag is stale), and the slot it holds is never handed to anyone else, so its
// create-only commit can never meet another's file. A slot that never became a file is a gap:
// sequences need only be strictly increasing.
import { fileName } from '../contract/naming.js';
import type { Integration } from '../integration/settings.js';
import type { Cursor, Slot } from './cursors.js';

/** Where a name is reserved for: account, container, path and schema version (names differ by version). */
export function destinationOf(i: Integration): string {
  return JSON.stringify([i.account, i.container, i.blobPath, i.schemaVersion]);
}

/** The cursor with a slot for the run's next file at `destination`: the run's own one there, else a new one. */
export function withSlot(cursor: Cursor, destination: string): Cursor {
  const run = cursor.run!;
  if (run.slot?.destination === destination) return cursor;
  if (run.partSequence !== undefined) {
    const slot: Slot = { sequence: run.partSequence, part: run.nextPart!, destination };
    return { ...cursor, run: { ...run, slot, nextPart: run.nextPart! + 1 } };
  }
  return { ...cursor, run: { ...run, slot: { sequence: cursor.nextSequence, destination } }, nextSequence: cursor.nextSequence + 1 };
}

export function slotName(integration: Integration, cursor: Cursor, slot: Slot): string {
  return fileName(cursor.fileType, integration.schemaVersion, cursor.workspaceId, slot.sequence, slot.part);
}
