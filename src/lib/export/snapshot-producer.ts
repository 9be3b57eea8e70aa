// Initial People and Attributes syncs: a snapshot of the people state, in the state's order from the
// run's position (the last person written), so a continuation resumes at the next person. Deleted,
// suppressed and id-less people are left out; a person's rows never straddle two files.
import type { FileType } from '../contract/schemas.js';
import type { Row } from '../parquet/writer.js';
import type { PeopleState, PersonState } from '../source/people-state.js';
import { approxSize, type FileLimits, type Producer } from './rows.js';

export function snapshotProducer(people: PeopleState, limits: FileLimits, workspaceId: number, fileType: FileType, after: string): Producer {
  return async (out) => {
    let rows = 0;
    let bytes = 0;
    let end = after;
    for await (const { person, position } of people.scan(workspaceId, after)) {
      // A person's rows stay in one file: the limits are checked between people.
      if (rows >= limits.maxRowsPerFile || bytes >= limits.maxBytesPerFile) break;
      end = position;
      if (!person.customer_id || person.deleted || person.suppressed) continue;
      for (const row of snapshotRows(workspaceId, fileType, person)) {
        await out.row(row);
        rows++;
        bytes += approxSize(row);
      }
    }
    return { rows, end };
  };
}

/** A person's rows in the People or Attributes schema. */
export function snapshotRows(workspaceId: number, fileType: FileType, p: PersonState): Row[] {
  if (fileType === 'people') {
    return [{
      workspace_id: workspaceId,
      customer_id: p.customer_id,
      internal_customer_id: p.internal_customer_id,
      deleted: p.deleted,
      suppressed: p.suppressed,
      created_at: p.created_at,
      updated_at: p.updated_at,
      email_addr: p.email_addr,
    }];
  }
  // Current attributes only: the state also remembers removals ([null, ts]).
  return Object.entries(p.attrs).filter(([, [value]]) => value !== null).map(([name, [value, ts]]) => ({
    workspace_id: workspaceId,
    internal_customer_id: p.internal_customer_id,
    attribute_name: name,
    attribute_value: value,
    timestamp: ts,
  }));
}
