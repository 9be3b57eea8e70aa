// SPEC section 4: the history of a person deleted or suppressed before the first sync goes out
// anonymized. Initial syncs of the history types null the person's id, and content nulls the
// recipient of such a person's messages.
import type { FileType } from '../contract/schemas.js';
import type { Row } from '../parquet/writer.js';
import type { PeopleState } from '../source/people-state.js';

export interface Anonymized {
  ids: Set<string>;
  addresses: Set<string>;
}

/** People deleted or suppressed now: their ids (and addresses, for content recipients); undefined when none apply. */
export async function anonymizedPeople(people: PeopleState, workspaceId: number, fileType: FileType): Promise<Anonymized | undefined> {
  if (fileType === 'people' || fileType === 'attributes' || fileType === 'metrics') return undefined;
  const ids = await people.deletedOrSuppressed(workspaceId);
  if (ids.size === 0) return undefined;
  const addresses = new Set<string>();
  if (fileType === 'content') {
    for (const s of (await people.get(workspaceId, ids)).values()) if (s.email_addr) addresses.add(s.email_addr);
  }
  return { ids, addresses };
}

export function anonymizeRow(row: Row, a: Anonymized): void {
  if (typeof row.internal_customer_id === 'string' && a.ids.has(row.internal_customer_id)) row.internal_customer_id = null;
  if (typeof row.recipient === 'string' && a.addresses.has(row.recipient)) row.recipient = null;
}
