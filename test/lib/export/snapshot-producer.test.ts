// The snapshot producer on its own, over a real people state in Azurite: initial People and
// Attributes rows in the state's order, deleted/suppressed/id-less people left out, a person's rows never
// split across files, and resumption from the key where a file ended.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../src/lib/services.js';
import { snapshotProducer } from '../../../src/lib/export/snapshot-producer.js';
import type { Row } from '../../../src/lib/parquet/writer.js';
import { freshWorkspace, testServices } from '../../support/env.js';
import { collectRows } from '../../support/row-sink.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

async function produce(ws: number, fileType: 'people' | 'attributes', after: string, maxRowsPerFile = 1000) {
  const { rows, ...sink } = collectRows();
  const result = await snapshotProducer(services.people, { maxRowsPerFile, maxBytesPerFile: 1 << 30 }, ws, fileType, after)({ ...sink });
  return { ...result, rows };
}

describe('snapshot producer', () => {
  it('People and Attributes of the current state, without deleted or suppressed people', async () => {
    const ws = freshWorkspace();
    await services.ingest.ingest(ws, 'people', [
      { internal_customer_id: 'p2', customer_id: 'c2', email_addr: 'two@x', updated_at: iso(T0), attributes: { plan: 'pro', city: 'Oslo' } },
      { internal_customer_id: 'p1', customer_id: 'c1', updated_at: iso(T0), attributes: { plan: 'free' } },
      { internal_customer_id: 'p3', customer_id: 'c3', deleted: true, updated_at: iso(T0), attributes: { plan: 'gone' } },
      { internal_customer_id: 'p4', customer_id: 'c4', suppressed: true, updated_at: iso(T0) },
    ]);
    await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'p1', customer_id: 'c1', updated_at: iso(T0 + 1000), attributes: { plan: 'pro' } }]);
    await services.people.catchUp(ws);

    const people = await produce(ws, 'people', '');
    expect(people.rows.map((r) => [r.internal_customer_id, r.customer_id, r.email_addr ?? null, r.updated_at, r.workspace_id]).sort()).toEqual([
      ['p1', 'c1', null, T0 + 1000, ws],
      ['p2', 'c2', 'two@x', T0, ws],
    ]);
    const attributes = await produce(ws, 'attributes', '');
    expect(attributes.rows.map((r) => [r.internal_customer_id, r.attribute_name, r.attribute_value]).sort()).toEqual([
      ['p1', 'plan', 'pro'],
      ['p2', 'city', 'Oslo'],
      ['p2', 'plan', 'pro'],
    ]);
  });

  it('checks the row limit between people, so a person is never split, and resumes after the key it ended at', async () => {
    const ws = freshWorkspace();
    await services.ingest.ingest(ws, 'people', [
      { internal_customer_id: 'a', customer_id: 'ca', updated_at: iso(T0), attributes: { x: '1', y: '2', z: '3' } },
      { internal_customer_id: 'b', customer_id: 'cb', updated_at: iso(T0), attributes: { x: '1' } },
      { internal_customer_id: 'c', customer_id: 'cc', updated_at: iso(T0), attributes: { x: '1', y: '2' } },
    ]);
    await services.people.catchUp(ws);
    // The state's order is by a hash of the id (people-pages.ts), not the id: follow the positions.
    const files: string[][] = [];
    for (let end = ''; ; ) {
      const file = await produce(ws, 'attributes', end, 2);
      if (file.rows.length === 0) break;
      files.push(file.rows.map((r) => `${r.internal_customer_id}.${r.attribute_name}`));
      end = String(file.end);
    }
    expect(files.flat().sort()).toEqual(['a.x', 'a.y', 'a.z', 'b.x', 'c.x', 'c.y']);
    const rowsOf = { a: 3, b: 1, c: 2 };
    for (const file of files) {
      for (const id of new Set(file.map((r) => r.split('.')[0]))) expect(file.filter((r) => r.startsWith(`${id}.`))).toHaveLength(rowsOf[id as 'a']);
    }
    // A file stops at the first person boundary at or past 2 rows.
    for (const file of files.slice(0, -1)) expect(file.length).toBeGreaterThanOrEqual(2);
  });
});
