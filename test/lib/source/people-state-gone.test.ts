// People state's "gone at a log position" query on Azurite: spans kept per person, the sparse gone
// index written with the state, and the one-time index of states written before the index existed.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { TABLES } from '../../../src/lib/platform/storage.js';
import { freshWorkspace, testServices } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

const person = (id: string, extra: Record<string, unknown> = {}) => ({ internal_customer_id: id, customer_id: `c-${id}`, ...extra });

describe('people state: gone at a position', () => {
  it('answers by the log position: deleted, restored, suppressed, never gone', async () => {
    const ws = freshWorkspace();
    const { ingest, people, source } = services;
    await ingest.ingest(ws, 'people', [person('a'), person('b'), person('c', { suppressed: true })]); // seq 1-3
    await ingest.ingest(ws, 'people', [person('a', { deleted: true })]); // seq 4
    await ingest.ingest(ws, 'people', [person('a', { deleted: false })]); // seq 5
    expect((await source.head(ws, 'people')).seq).toBe(5);
    const at = async (seq: number) => [...(await people.goneAt(ws, ['a', 'b', 'c', 'unknown'], seq))].sort();
    expect(await at(3)).toEqual(['c']);
    expect(await at(4)).toEqual(['a', 'c']);
    expect(await at(5)).toEqual(['c']);
  });

  it('finds people deleted before the gone index existed (indexed once per workspace)', async () => {
    const ws = freshWorkspace();
    const states = services.storage.table(TABLES.peopleState);
    // A state entity as written by the previous version: flags only, no gone span, no index entry.
    await states.createEntity({ partitionKey: String(ws), rowKey: 'legacy', deleted: true, suppressed: false, pseq: BigInt(1), aseq: BigInt(0) });
    await states.createEntity({ partitionKey: String(ws), rowKey: 'alive', deleted: false, suppressed: false, pseq: BigInt(2), aseq: BigInt(0) });
    expect([...(await services.people.goneAt(ws, ['legacy', 'alive'], 0))]).toEqual(['legacy']);
    const fresh = createServices(services.config); // another instance: reads the marker, not the flags
    expect([...(await fresh.people.goneAt(ws, ['legacy', 'alive'], 10))]).toEqual(['legacy']);
  });
});
