// People state under Azure's Table limits (AZURE_LIMITS_STRICT): large attribute maps go through
// ingest, the state, and the export to the customer's container.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../src/lib/services.js';
import { customerContainer, duck, sqlList } from '../../support/container.js';
import { freshWorkspace, testServices } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

const KiB = 1024;

describe('people state within Azure limits', () => {
  it('100 people × 60 KiB of attributes ingest and export (initial sync and changeset)', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, blobPath: 'out', files: ['people', 'attributes'] });
    // Six attributes of 10 KiB each, some characters outside ASCII and outside the BMP.
    const value = (p: number, a: number, round: number) => `${p}.${a}.${round}:` + 'é😀x'.repeat((10 * KiB) / 4);
    const people = (round: number) =>
      Array.from({ length: 100 }, (_, p) => ({
        internal_customer_id: `p${String(p).padStart(3, '0')}`,
        customer_id: `c${p}`,
        attributes: Object.fromEntries(Array.from({ length: 6 }, (_, a) => [`a${a}`, value(p, a, round)])),
      }));
    await services.ingest.ingest(ws, 'people', people(0));
    const exporter = services.exporter();
    for (const fileType of ['people', 'attributes'] as const) expect((await exporter.run({ workspaceId: ws, fileType }, 'w')).status).toBe('done');
    // A second round changes every attribute of every person: state batches are as large again.
    await services.ingest.ingest(ws, 'people', people(1));
    for (const fileType of ['people', 'attributes'] as const) expect((await exporter.run({ workspaceId: ws, fileType }, 'w')).status).toBe('done');

    const names = (await c.list('out/')).filter((n) => n.endsWith('.parquet'));
    const files = await c.download(names);
    const attributes = files.filter((f) => f.includes('attributes_v4'));
    expect(attributes).toHaveLength(2);
    const merged = await duck(
      `SELECT internal_customer_id AS id, attribute_name AS name, arg_max(attribute_value, timestamp) AS value, count(*) AS versions
       FROM read_parquet(${sqlList(attributes)}) GROUP BY 1, 2 ORDER BY 1, 2`,
    );
    expect(merged).toHaveLength(600);
    for (const r of merged) {
      const [p, a] = [Number(String(r.id).slice(1)), Number(String(r.name).slice(1))];
      expect(r.value === value(p, a, 1)).toBe(true);
      expect(r.versions).toBe(2n);
    }
    const peopleFiles = files.filter((f) => f.includes('people_v4'));
    expect(await duck(`SELECT count(DISTINCT internal_customer_id) AS n FROM read_parquet(${sqlList(peopleFiles)})`)).toEqual([{ n: 100n }]);
    const state = await services.people.get(ws, ['p042']);
    expect(state.get('p042')!.attrs.a5[0]).toBe(value(42, 5, 1));
  });

  it('a person at the size limit is stored within an entity (1 MiB) and its properties (64 KiB)', async () => {
    const ws = freshWorkspace();
    // Six values of 64 KiB characters: close to MAX_PERSON_ATTRIBUTES_CHARS, ~790 KB as UTF-16.
    const attributes = Object.fromEntries(Array.from({ length: 6 }, (_, a) => [`big${a}`, String(a).repeat(64 * KiB)]));
    await services.ingest.ingest(ws, 'people', [
      { internal_customer_id: 'big', customer_id: 'c', attributes },
      ...Array.from({ length: 99 }, (_, p) => ({ internal_customer_id: `p${p}`, customer_id: `c${p}`, attributes: { a: 'x'.repeat(30 * KiB) } })),
    ]);
    const state = (await services.people.get(ws, ['big'])).get('big')!;
    expect(Object.keys(state.attrs)).toHaveLength(6);
    expect(state.attrs.big5[0]).toBe(attributes.big5);
  });
});
