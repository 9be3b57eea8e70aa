// SPEC section 4: history rows of people deleted or suppressed before the first sync go out
// anonymized, and a row belongs to a person, never to a string. Deliveries, subjects and events
// belong to their internal_customer_id (nulled); content belongs to the person of its delivery
// (delivery_id → that delivery's internal_customer_id) and loses its recipient.
//
// "Before the first sync" is fixed per file type and integration generation: the people log position
// saved in the cursor when the initial sync is planned (`anonymizeAt`), after the people state caught
// up, so a deletion committed just before is included and a later one is not. Changesets of the same
// generation apply the same rule, so a re-sent row stays anonymized. Memory is bounded: nothing holds
// the set of deleted people; each file resolves the distinct owners of its own rows (at most
// EXPORT_MAX_ROWS_PER_FILE) by point reads of people state (and, for content, the delivery index).
import { ownerColumn, type FileType } from '../contract/schemas.js';
import type { PeopleState } from '../source/people-state.js';
import type { DeliveryOwners } from '../source/delivery-owners.js';
import { Utf8Column, type Values } from '../source/segment.js';

export { ownerColumn };

/** Resolves the owners of one file's rows to those whose rows are anonymized. */
export interface Anonymizer {
  column: 'internal_customer_id' | 'delivery_id';
  /** Whether anyone in the workspace may be gone (false: no row is anonymized, nothing to resolve). */
  anyGone(): Promise<boolean>;
  resolve(owners: Iterable<string>): Promise<Set<string>>;
}

export function anonymizer(deps: { people: Pick<PeopleState, 'goneAt' | 'anyGone'>; deliveryOwners: Pick<DeliveryOwners, 'owners'> }, workspaceId: number, fileType: FileType, peopleSeq: number): Anonymizer | undefined {
  const column = ownerColumn(fileType);
  if (!column) return undefined;
  const gone = (ids: Iterable<string>) => deps.people.goneAt(workspaceId, ids, peopleSeq);
  // Gone as of peopleSeq: the same answer for every file of the run, so it is asked once.
  let goneBySeq: Promise<boolean> | undefined;
  const anyGone = () => (goneBySeq ??= deps.people.anyGone(workspaceId, peopleSeq).catch((e: unknown) => {
    goneBySeq = undefined;
    throw e;
  }));
  if (column === 'internal_customer_id') return { column, anyGone, resolve: gone };
  return {
    column,
    anyGone,
    async resolve(deliveryIds) {
      const owners = await deps.deliveryOwners.owners(workspaceId, deliveryIds);
      const people = await gone([...owners.values()].filter((p): p is string => p !== null));
      return new Set([...owners].filter(([, p]) => p !== null && people.has(p)).map(([d]) => d));
    },
  };
}

/**
 * Anonymizes, in rows given by column, each row whose owner (its `column` value) is in `anonymized`.
 * Columns may be UTF-8 bytes (Utf8Column): a value is then nulled by its flag.
 */
export function anonymizeColumns(columns: Record<string, Values | Utf8Column>, column: Anonymizer['column'], anonymized: Set<string>): void {
  const owners = columns[column];
  const target = columns[column === 'delivery_id' ? 'recipient' : 'internal_customer_id'];
  if (!owners || !target) return;
  const ownerAt = owners instanceof Utf8Column ? (i: number) => owners.value(i) : (i: number) => owners[i];
  for (let i = 0; i < owners.length; i++) {
    const owner = ownerAt(i);
    if (typeof owner !== 'string' || !anonymized.has(owner)) continue;
    if (target instanceof Utf8Column) target.nulls[i] = 1;
    else target[i] = null;
  }
}
