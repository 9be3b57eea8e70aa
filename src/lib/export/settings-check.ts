// SPEC 5.7: a settings change applies from the next file on. The exporter reads the integration
// again at every file boundary: before a file (it stops when this instance and generation no longer
// want the pair), just before the commit (a file is abandoned when anything it is written under
// changed, the SAS included), and right after it (the checkpoint is made only while the integration
// still has the file's destination, so the cursor never advances for rows that went elsewhere).
import { V1_FILE_TYPES, type FileType } from '../contract/schemas.js';
import type { Integration } from '../integration/settings.js';
import { destinationOf } from './reservation.js';

/** The integration instance and generation an export works for; a change of either ends it. */
export interface Identity {
  instance: string;
  generation: number;
}

export const identityOf = (i: Integration, fileType: FileType): Identity => ({ instance: i.instance, generation: i.generations[fileType] ?? 0 });

/** Why the integration does not want this file type exported now, if it does not. */
export function notWanted(i: Integration | undefined, fileType: FileType): string | undefined {
  if (!i || !i.enabled || !i.files.includes(fileType)) return 'no enabled integration for this file type';
  if (i.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) return 'schema v1 has no such file';
  return undefined;
}

/** The integration still wants the pair exported, by the same instance and generation. */
export function isCurrent(i: Integration | undefined, fileType: FileType, id: Identity): i is Integration {
  return !notWanted(i, fileType) && i!.instance === id.instance && (i!.generations[fileType] ?? 0) === id.generation;
}

/** A file may be committed under `now` only if it was written under the same destination and SAS. */
export const sameSettings = (then: Integration, now: Integration): boolean => then.sasUrl === now.sasUrl && destinationOf(then) === destinationOf(now);

/** Thrown before a commit when the settings the file was written under changed: the file is abandoned. */
export class SettingsChanged extends Error {
  constructor() {
    super('the integration settings changed while the file was written');
  }
}
