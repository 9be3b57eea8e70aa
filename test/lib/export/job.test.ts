import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { customerContainer, duck, sqlList } from '../../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

const pad = (n: number) => String(n).padStart(20, '0');
const iso = (ms: number) => new Date(ms).toISOString();
const T0 = Date.parse('2026-01-01T00:00:00Z');

const delivery = (id: string, extra: Record<string, unknown> = {}) => ({
  delivery_id: id,
  internal_customer_id: `p-${id}`,
  delivery_type: 'email',
  campaign_id: 7,
  created_at: iso(T0),
  ...extra,
});

let services: Services;
beforeAll(async () => {
  const config = testConfig({ EXPORT_MAX_ROWS_PER_FILE: '1000' });
  await testStorage(config);
  services = createServices(config);
});

describe('export of a log file type (deliveries)', () => {
  it('initial sync, changeset with one row per key, nothing to do, create-only names', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, blobPath: 'out', files: ['deliveries'] });
    await services.ingest.ingest(ws, 'deliveries', [delivery('d1'), delivery('d2'), delivery('d3')]);
    await services.ingest.ingest(ws, 'deliveries', [delivery('d2', { campaign_id: 8 })]);
    const exporter = services.exporter();

    const first = await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w1');
    expect(first.status).toBe('done');
    expect(first.files.map((f) => [f.name, f.rows])).toEqual([[`deliveries_v4_${ws}_${pad(1)}.parquet`, 3]]);

    await services.ingest.ingest(ws, 'deliveries', [delivery('d3', { campaign_id: 9 }), delivery('d4'), delivery('d3', { campaign_id: 10 })]);
    const second = await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w1');
    expect(second.files.map((f) => [f.name, f.rows])).toEqual([[`deliveries_v4_${ws}_${pad(2)}.parquet`, 2]]);

    const third = await exporter.run({ workspaceId: ws, fileType: 'deliveries' }, 'w1');
    expect(third.status).toBe('nothing');

    const names = (await c.list('out/')).filter((n) => n.endsWith('.parquet'));
    expect(names).toEqual([`out/deliveries_v4_${ws}_${pad(1)}.parquet`, `out/deliveries_v4_${ws}_${pad(2)}.parquet`]);
    const [f1, f2] = await c.download(names);
    expect(await duck(`SELECT delivery_id, campaign_id, seq_num, workspace_id FROM read_parquet('${f1}') ORDER BY delivery_id`)).toEqual([
      { delivery_id: 'd1', campaign_id: 7n, seq_num: 1n, workspace_id: BigInt(ws) },
      { delivery_id: 'd2', campaign_id: 8n, seq_num: 4n, workspace_id: BigInt(ws) },
      { delivery_id: 'd3', campaign_id: 7n, seq_num: 3n, workspace_id: BigInt(ws) },
    ]);
    expect(await duck(`SELECT delivery_id, campaign_id, seq_num FROM read_parquet('${f2}') ORDER BY delivery_id`)).toEqual([
      { delivery_id: 'd3', campaign_id: 10n, seq_num: 7n },
      { delivery_id: 'd4', campaign_id: 7n, seq_num: 6n },
    ]);
    // Merged state = source state.
    expect(
      await duck(`SELECT delivery_id, arg_max(campaign_id, seq_num) AS campaign_id FROM read_parquet(${sqlList([f1, f2])}) GROUP BY 1 ORDER BY 1`),
    ).toEqual([
      { delivery_id: 'd1', campaign_id: 7n },
      { delivery_id: 'd2', campaign_id: 8n },
      { delivery_id: 'd3', campaign_id: 10n },
      { delivery_id: 'd4', campaign_id: 7n },
    ]);
  });

  it('splits a large delta into several files of at most maxRowsPerFile rows', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['deliveries'] });
    const records = Array.from({ length: 2500 }, (_, i) => delivery(`d${i}`));
    await services.ingest.ingest(ws, 'deliveries', records);
    const out = await services.exporter().run({ workspaceId: ws, fileType: 'deliveries' }, 'w1');
    expect(out.files.map((f) => f.rows)).toEqual([1000, 1000, 500]);
    const names = (await c.list()).filter((n) => n.endsWith('.parquet'));
    expect(names).toEqual([1, 2, 3].map((s) => `deliveries_v4_${ws}_${pad(s)}.parquet`));
    const files = await c.download(names);
    expect(await duck(`SELECT count(*) AS n, count(DISTINCT delivery_id) AS k FROM read_parquet(${sqlList(files)})`)).toEqual([{ n: 2500n, k: 2500n }]);
  });
});

describe('export of a snapshot type (attributes)', () => {
  it('splits an initial snapshot by bytes as well as rows, keeping each person in one file', async () => {
    const config = testConfig({ EXPORT_MAX_BYTES_PER_FILE: '2000' });
    const small = createServices(config);
    const ws = freshWorkspace();
    const c = await customerContainer();
    await small.integrations.put(ws, { sasUrl: c.sasUrl, files: ['attributes'] });
    const people = Array.from({ length: 12 }, (_, i) => ({ internal_customer_id: `p${String(i).padStart(2, '0')}`, customer_id: `c${i}`, attributes: { a: 'x'.repeat(100), b: 'y'.repeat(100), n: i } }));
    await small.ingest.ingest(ws, 'people', people);
    const out = await small.exporter().run({ workspaceId: ws, fileType: 'attributes' }, 'w');
    expect(out.files.length).toBeGreaterThan(1);
    const files = await c.download(out.files.map((f) => f.name));
    const rows = await duck(`SELECT internal_customer_id AS id, attribute_name AS name, filename FROM read_parquet(${sqlList(files)}, filename = true) ORDER BY 1, 2`);
    expect(rows.map((r) => `${r.id}.${r.name}`)).toEqual(people.flatMap((p) => ['a', 'b', 'n'].map((n) => `${p.internal_customer_id}.${n}`)));
    // Each person's attributes are in one file.
    const filesPerPerson = new Map<unknown, Set<unknown>>();
    for (const r of rows) filesPerPerson.set(r.id, (filesPerPerson.get(r.id) ?? new Set()).add(r.filename));
    expect([...filesPerPerson.values()].every((s) => s.size === 1)).toBe(true);
  });
});
