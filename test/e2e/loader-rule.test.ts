// SPEC 5.4 for any input, through the real storage path: random interleavings of people and
// attribute changes with random timestamps (older, equal or later than the exported ones) go through
// ingest, the source log and people state on Azurite, the exporter into a customer container, and
// docs/warehouse/duckdb/load.sql (the documented merge: latest updated_at / timestamp) after every
// export. The loaded tables must equal the source's current state.
import { readFileSync, rmSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../src/lib/services.js';
import { customerContainer } from '../support/container.js';
import { freshWorkspace, testServices } from '../support/env.js';
import { duckDatabase, tempDir } from '../support/readers.js';

const LOAD_SQL = readFileSync(new URL('../../docs/warehouse/duckdb/load.sql', import.meta.url), 'utf8');
const T0 = Date.parse('2026-03-01T00:00:00Z');
const iso = (offset: number) => new Date(T0 + offset).toISOString();

let services: Services;
beforeAll(async () => {
  services = await testServices({ EXPORT_MAX_ROWS_PER_FILE: '3' });
});

const id = fc.constantFrom('p0', 'p1');
const name = fc.constantFrom('plan', 'city');
const value = fc.constantFrom(null, 'one', 'two', 3);
const offset = fc.integer({ min: 0, max: 3 }); // ms: ties and older timestamps are common
type Step =
  | { kind: 'people'; records: { internal_customer_id: string; customer_id: string; email_addr: string; updated_at?: string; attributes: Record<string, string | number | null> }[] }
  | { kind: 'attributes'; records: { internal_customer_id: string; attribute_name: string; attribute_value: string | number | null; timestamp?: string }[] }
  | { kind: 'export' };
const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant('people' as const),
    records: fc.array(
      fc.record({
        internal_customer_id: id,
        customer_id: fc.constant('c'),
        email_addr: fc.constantFrom('a@x', 'b@x'),
        updated_at: fc.option(offset.map(iso), { nil: undefined }),
        attributes: fc.dictionary(name, value, { maxKeys: 2 }),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  }),
  fc.record({
    kind: fc.constant('attributes' as const),
    records: fc.array(fc.record({ internal_customer_id: id, attribute_name: name, attribute_value: value, timestamp: fc.option(offset.map(iso), { nil: undefined }) }), { minLength: 1, maxLength: 3 }),
  }),
  fc.constant({ kind: 'export' as const }),
);

describe('loader rules hold for any input (SPEC 5.4)', () => {
  it('random changes with random timestamps, exported and loaded with load.sql after every export = source state', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 4, maxLength: 10 }), async (steps) => {
        const ws = freshWorkspace();
        const c = await customerContainer();
        await services.integrations.put(ws, { sasUrl: c.sasUrl, blobPath: 'out', files: ['people', 'attributes'] });
        const folder = tempDir('loader-rule-');
        const db = await duckDatabase();
        const exporter = services.exporter();
        // People records must exist before attribute rows name them; `sent` is what was ingested, in order.
        const people = new Set<string>();
        const sent: Step[] = [];
        const sync = async () => {
          for (const fileType of ['people', 'attributes'] as const) {
            for (let i = 0; i < 10 && ['done', 'continued'].includes((await exporter.run({ workspaceId: ws, fileType }, 'w')).status); i++);
          }
          const names = (await c.list('out/')).filter((n) => n.endsWith('.parquet'));
          for (const n of names) await c.client.getBlockBlobClient(n).downloadToFile(`${folder}/${n.slice(4)}`);
          await db.rows(`SET VARIABLE export_path = '${folder}'`);
          await db.rows(LOAD_SQL);
        };
        try {
          for (const s of steps) {
            if (s.kind === 'export') await sync();
            else if (s.kind === 'people') {
              await services.ingest.ingest(ws, 'people', s.records);
              for (const r of s.records) people.add(r.internal_customer_id);
              sent.push(s);
            } else {
              const records = s.records.filter((r) => people.has(r.internal_customer_id));
              if (records.length > 0) await services.ingest.ingest(ws, 'attributes', records);
              sent.push({ kind: 'attributes', records });
            }
          }
          await sync();
          // The source's current state: the people state (what ingest committed, in seq order).
          const state = await services.people.get(ws, people);
          const expectedPeople = [...state.values()]
            .map((p) => ({ internal_customer_id: p.internal_customer_id, email_addr: p.email_addr, updated_at: p.updated_at }))
            .sort((a, b) => a.internal_customer_id.localeCompare(b.internal_customer_id));
          const expectedAttributes = [...state.values()]
            .flatMap((p) => Object.entries(p.attrs).filter(([, [v]]) => v !== null).map(([n, [v]]) => ({ id: p.internal_customer_id, name: n, value: v })))
            .sort((a, b) => `${a.id}|${a.name}`.localeCompare(`${b.id}|${b.name}`));
          const loadedPeople = (await db.rows('SELECT internal_customer_id, email_addr, epoch_ms(updated_at) AS updated_at FROM people ORDER BY 1')).map((r) => ({
            internal_customer_id: String(r.internal_customer_id),
            email_addr: r.email_addr as string | null,
            updated_at: Number(r.updated_at),
          }));
          const loadedAttributes = await db.rows('SELECT internal_customer_id AS id, attribute_name AS name, attribute_value AS value FROM attributes_current ORDER BY 1, 2');
          expect(loadedPeople).toEqual(expectedPeople);
          expect(loadedAttributes).toEqual(expectedAttributes);
          // The state is the last write per key in ingest order (what the platform sent last).
          const lastEmail = new Map<string, string>();
          const lastValue = new Map<string, string | null>();
          for (const s of sent) {
            if (s.kind === 'people') {
              for (const r of s.records) {
                lastEmail.set(r.internal_customer_id, r.email_addr);
                for (const [n, v] of Object.entries(r.attributes)) lastValue.set(`${r.internal_customer_id}|${n}`, v === null ? null : String(v));
              }
            } else if (s.kind === 'attributes') {
              for (const r of s.records) lastValue.set(`${r.internal_customer_id}|${r.attribute_name}`, r.attribute_value === null ? null : String(r.attribute_value));
            }
          }
          expect(Object.fromEntries(loadedPeople.map((p) => [p.internal_customer_id, p.email_addr]))).toEqual(Object.fromEntries(lastEmail));
          expect(Object.fromEntries(loadedAttributes.map((a) => [`${a.id}|${a.name}`, a.value]))).toEqual(Object.fromEntries([...lastValue].filter(([, v]) => v !== null)));
        } finally {
          db.close();
          rmSync(folder, { recursive: true, force: true });
        }
      }),
      // No shrinking through storage (slow): the pure property in test/lib/source/change-timestamps.test.ts shrinks.
      { numRuns: 16, endOnFailure: true },
    );
  }, 240_000);

  it('an equal or older timestamp is exported 1 ms after the previous one of its key, removals included', async () => {
    const ws = freshWorkspace();
    const person = (offset: number, attributes: Record<string, string | null> = {}) => ({ internal_customer_id: 'p', customer_id: 'c', updated_at: iso(offset), attributes });
    await services.ingest.ingest(ws, 'people', [person(10, { plan: 'a' })]);
    await services.ingest.ingest(ws, 'people', [person(10, { plan: 'b' }), person(5)]);
    await services.ingest.ingest(ws, 'attributes', [{ internal_customer_id: 'p', attribute_name: 'plan', attribute_value: null, timestamp: iso(20) }]);
    await services.ingest.ingest(ws, 'attributes', [{ internal_customer_id: 'p', attribute_name: 'plan', attribute_value: 'c', timestamp: iso(3) }]);
    const log = async (fileType: 'people' | 'attributes', column: string) => {
      const out: unknown[] = [];
      for await (const r of services.source.read(ws, fileType, 0, (await services.source.head(ws, fileType)).seq)) out.push([r.record.attribute_value, (r.record[column] as number) - T0]);
      return out;
    };
    expect(await log('people', 'updated_at')).toEqual([[undefined, 10], [undefined, 11], [undefined, 12]]);
    expect(await log('attributes', 'timestamp')).toEqual([['a', 10], ['b', 11], [null, 20], ['c', 21]]);
  });
});
