// SPEC section 4, anonymization, through the real storage path (ingest → source log → export job →
// parquet in a customer container on Azurite → DuckDB): a row belongs to a person, never to a
// string. People deleted or suppressed before a file type's initial sync lose their id in every
// history row and the recipient of every content row of their deliveries, whatever it holds; a
// living person sharing an address keeps theirs; changesets of the same generation keep the rule.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../src/lib/services.js';
import { Exporter } from '../../src/lib/export/job.js';
import type { FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, duck, sqlList, type CustomerContainer } from '../support/container.js';
import { freshWorkspace, testConfig, testStorage } from '../support/env.js';

const T0 = Date.parse('2026-02-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

let services: Services;
beforeAll(async () => {
  // Small files: the rule must hold in every file of a run, not only the first.
  const config = testConfig({ EXPORT_MAX_ROWS_PER_FILE: '2' });
  await testStorage(config);
  services = createServices(config);
});

const person = (id: string, extra: Record<string, unknown> = {}) => ({ internal_customer_id: id, customer_id: `c-${id}`, created_at: iso(T0), updated_at: iso(T0), ...extra });
const delivery = (id: string, who: string, type = 'email') => ({ delivery_id: id, internal_customer_id: who, delivery_type: type, created_at: iso(T0) });
const content = (id: string, recipient: string, body = 'hello') => ({ delivery_id: id, recipient, body, type: 'email' });

async function exportAll(ws: number, fileType: FileType) {
  const exporter = services.exporter();
  for (let i = 0; i < 20; i++) {
    const out = await exporter.run({ workspaceId: ws, fileType }, 'w');
    if (out.status !== 'continued') return out;
  }
  throw new Error('export did not finish');
}

/** Every row of a file type in the container, the latest file's row per key (content's loader rule). */
async function latestRows(c: CustomerContainer, name: string, key: string, cols: string): Promise<Record<string, unknown>[]> {
  const names = (await c.list()).filter((n) => n.startsWith(`${name}_v4_`));
  const files = await c.download(names);
  return duck(
    `SELECT ${cols} FROM (SELECT *, row_number() OVER (PARTITION BY ${key} ORDER BY filename DESC) AS rn FROM read_parquet(${sqlList(files)}, filename = true)) WHERE rn = 1 ORDER BY ${key}`,
  );
}

async function workspace(files: FileType[]) {
  const ws = freshWorkspace();
  const c = await customerContainer();
  await services.integrations.put(ws, { sasUrl: c.sasUrl, files });
  return { ws, c, ingest: (t: FileType, records: unknown[]) => services.ingest.ingest(ws, t, records) };
}

describe('anonymization is decided by the person', () => {
  it('initial sync: every content row of a person deleted before it loses its recipient, whatever it holds; a living person sharing an address keeps it', async () => {
    const { ws, c, ingest } = await workspace(['content', 'deliveries', 'subjects', 'events']);
    // Content arrives before its deliveries (the platform sends them separately).
    await ingest('content', [
      content('d-old', 'old@example.com'), // pgone's previous address
      content('d-sms', '+15550001111'), // a phone number
      content('d-push', 'device-token-abc'), // a push token
      content('d-null', 'someone@example.com'), // pnull: deleted with email_addr null
      content('d-shared-gone', 'shared@example.com'), // psharegone's address ...
      content('d-shared-live', 'shared@example.com'), // ... shared by a living person
      content('d-live', 'live@example.com'),
    ]);
    await ingest('deliveries', [
      delivery('d-old', 'pgone'), delivery('d-sms', 'pgone', 'sms'), delivery('d-push', 'psup', 'push'),
      delivery('d-null', 'pnull'), delivery('d-shared-gone', 'psharegone'), delivery('d-shared-live', 'plive'), delivery('d-live', 'plive'),
    ]);
    await ingest('subjects', [{ subject_name: 's-gone', internal_customer_id: 'pgone', campaign_type: 'segment', campaign_id: 1, started_campaign_at: iso(T0), created_at: iso(T0) }]);
    await ingest('events', [{ event_id: 'e-null', internal_customer_id: 'pnull', name: 'x', type: 'event', timestamp: iso(Date.now()) }]);
    await ingest('people', [
      person('pgone', { email_addr: 'new@example.com', deleted: true }),
      person('psup', { email_addr: 'sup@example.com', suppressed: true }),
      person('pnull', { email_addr: null, deleted: true }),
      person('psharegone', { email_addr: 'shared@example.com', deleted: true }),
      person('plive', { email_addr: 'shared@example.com' }),
    ]);

    for (const t of ['content', 'deliveries', 'subjects', 'events'] as const) expect((await exportAll(ws, t)).status).toBe('done');

    expect(await latestRows(c, 'delivery_contents', 'delivery_id', 'delivery_id, recipient, body')).toEqual([
      { delivery_id: 'd-live', recipient: 'live@example.com', body: 'hello' },
      { delivery_id: 'd-null', recipient: null, body: 'hello' },
      { delivery_id: 'd-old', recipient: null, body: 'hello' },
      { delivery_id: 'd-push', recipient: null, body: 'hello' },
      { delivery_id: 'd-shared-gone', recipient: null, body: 'hello' },
      { delivery_id: 'd-shared-live', recipient: 'shared@example.com', body: 'hello' },
      { delivery_id: 'd-sms', recipient: null, body: 'hello' },
    ]);
    expect(await latestRows(c, 'deliveries', 'delivery_id', 'delivery_id, internal_customer_id')).toEqual([
      { delivery_id: 'd-live', internal_customer_id: 'plive' },
      { delivery_id: 'd-null', internal_customer_id: null },
      { delivery_id: 'd-old', internal_customer_id: null },
      { delivery_id: 'd-push', internal_customer_id: null },
      { delivery_id: 'd-shared-gone', internal_customer_id: null },
      { delivery_id: 'd-shared-live', internal_customer_id: 'plive' },
      { delivery_id: 'd-sms', internal_customer_id: null },
    ]);
    expect(await latestRows(c, 'subjects', 'subject_name', 'subject_name, internal_customer_id')).toEqual([{ subject_name: 's-gone', internal_customer_id: null }]);
    expect(await latestRows(c, 'events', 'event_id', 'event_id, internal_customer_id')).toEqual([{ event_id: 'e-null', internal_customer_id: null }]);
  });

  it('changesets: a re-sent row of a person deleted before the initial sync stays anonymized; a person deleted after it keeps their rows', async () => {
    const { ws, c, ingest } = await workspace(['content', 'deliveries']);
    await ingest('people', [person('pgone', { email_addr: 'gone@example.com', deleted: true }), person('plater', { email_addr: 'later@example.com' })]);
    await ingest('deliveries', [delivery('d1', 'pgone'), delivery('d2', 'plater')]);
    await ingest('content', [content('d1', 'gone@example.com'), content('d2', 'later@example.com')]);
    for (const t of ['content', 'deliveries'] as const) expect((await exportAll(ws, t)).status).toBe('done');

    // After the first sync: pgone comes back (un-deleted), plater is deleted, and old rows are re-sent.
    await ingest('people', [person('pgone', { email_addr: 'gone@example.com', deleted: false, updated_at: iso(T0 + 1) }), person('plater', { deleted: true, updated_at: iso(T0 + 1) })]);
    await ingest('content', [content('d1', 'other-address@example.com', 'v2'), content('d2', 'later@example.com', 'v2')]);
    await ingest('deliveries', [{ ...delivery('d1', 'pgone'), campaign_id: 2 }, { ...delivery('d2', 'plater'), campaign_id: 2 }]);
    for (const t of ['content', 'deliveries'] as const) expect((await exportAll(ws, t)).status).toBe('done');

    expect(await latestRows(c, 'delivery_contents', 'delivery_id', 'delivery_id, recipient, body')).toEqual([
      { delivery_id: 'd1', recipient: null, body: 'v2' },
      { delivery_id: 'd2', recipient: 'later@example.com', body: 'v2' },
    ]);
    expect(await latestRows(c, 'deliveries', 'delivery_id', 'delivery_id, internal_customer_id, campaign_id')).toEqual([
      { delivery_id: 'd1', internal_customer_id: null, campaign_id: 2n },
      { delivery_id: 'd2', internal_customer_id: 'plater', campaign_id: 2n },
    ]);
  });

  it('a deletion committed just before the sync starts is honoured', async () => {
    const { ws, c, ingest } = await workspace(['content']);
    await ingest('people', [person('p1', { email_addr: 'a@example.com' })]);
    await ingest('deliveries', [delivery('d1', 'p1')]);
    await ingest('content', [content('d1', 'a@example.com')]);
    await ingest('people', [person('p1', { email_addr: 'b@example.com', deleted: true, updated_at: iso(T0 + 1) })]);
    expect((await exportAll(ws, 'content')).status).toBe('done');
    expect(await latestRows(c, 'delivery_contents', 'delivery_id', 'delivery_id, recipient')).toEqual([{ delivery_id: 'd1', recipient: null }]);
  });

  it('a content export whose delivery index has a long history to catch up hands on to continuations, then anonymizes', async () => {
    const { ws, c, ingest } = await workspace(['content']);
    const n = 2_500; // more than one catch-up chunk
    await ingest('people', [person('pgone', { deleted: true }), person('plive')]);
    await ingest('deliveries', Array.from({ length: n }, (_, i) => delivery(`d${i}`, i % 2 ? 'plive' : 'pgone')));
    await ingest('content', [content('d0', 'x@example.com'), content('d1', 'y@example.com'), content(`d${n - 2}`, 'z@example.com')]);
    const exporter = new Exporter({ ...services, config: { ...services.config, timeBudgetMs: 1 } });
    const statuses: string[] = [];
    for (let i = 0; i < 20 && statuses.at(-1) !== 'done'; i++) statuses.push((await exporter.run({ workspaceId: ws, fileType: 'content' }, 'w')).status);
    expect(statuses[0]).toBe('continued');
    expect(statuses.at(-1)).toBe('done');
    expect(await latestRows(c, 'delivery_contents', 'delivery_id', 'delivery_id, recipient')).toEqual([
      { delivery_id: 'd0', recipient: null },
      { delivery_id: 'd1', recipient: 'y@example.com' },
      { delivery_id: `d${n - 2}`, recipient: null },
    ]);
  });
});
