// The people state's previous layout: one entity per person, PartitionKey = workspace id, RowKey =
// the encoded person id (people-state.ts's fromEntity reads it). Read only to migrate it into pages
// once per workspace, and to continue a snapshot that started on it; never written.
import type { TableClient } from '@azure/data-tables';
import { fromEntity } from './people-codec.js';
import type { PersonState } from './people-state.js';

const filterAfter = (workspaceId: number, after: string) => `PartitionKey eq '${workspaceId}' and RowKey gt '${after.replace(/'/g, "''")}'`;

/** The previous layout's people after `after` (an encoded id), in chunks of at most `size`. */
export async function* legacyChunks(table: TableClient, workspaceId: number, after: string, size = 500): AsyncGenerator<PersonState[]> {
  for await (const page of table.listEntities({ queryOptions: { filter: filterAfter(workspaceId, after) } }).byPage({ maxPageSize: size })) {
    if (page.length > 0) yield page.map((e) => fromEntity(e as Record<string, unknown>));
  }
}

/** The previous layout's people after `after`, in key order (a snapshot position of that layout). */
export async function* legacyScan(table: TableClient, workspaceId: number, after: string): AsyncGenerator<PersonState> {
  for await (const chunk of legacyChunks(table, workspaceId, after, 100)) yield* chunk;
}
