// Issue 4, fault 6: several writers ingest deliveries, people, attributes and events over HTTP while
// syncs run back to back. After one more sync, loading every file in sequence order and merging by
// the SPEC 5.4 rules (highest seq_num; people: latest updated_at; attributes: latest timestamp,
// null = removed) reproduces the source state exactly, and the source holds exactly what the
// writers sent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';
import { SCHEMAS, type FileType } from '../../src/lib/contract/schemas.js';
import { customerContainer, duck, sqlList, type CustomerContainer } from '../support/container.js';
import { freshWorkspace } from '../support/env.js';
import { sequenceProblems, sourceRecords, startFaultHost, summary, waitFor, type FaultHost, type Rec } from '../support/faults.js';

const WRITERS = 4;
const ROUNDS = 6;
const TYPES: FileType[] = ['deliveries', 'people', 'attributes', 'events'];
let app: Azurite;
let h: FaultHost;
let c: CustomerContainer;
const ws = freshWorkspace();

beforeAll(async () => {
  app = await startAzurite();
  h = await startFaultHost({ name: 'concurrent-ingest', connectionString: app.connectionString, settings: { EXPORT_MAX_ROWS_PER_FILE: '40' } });
  c = await customerContainer();
});

afterAll(async () => {
  await h?.stop();
  await app?.stop();
  expect(h.leaks()).toEqual([]);
});

const NOW = Date.now();
let tick = 0;
/** Strictly increasing timestamps: one writer's changes to its own people are ordered by them. */
const stamp = () => new Date(NOW - 3600_000 + tick++).toISOString();

interface Sent {
  deliveries: Rec[];
  people: Rec[];
  attributes: Rec[];
  events: Rec[];
}
const sent: Sent = { deliveries: [], people: [], attributes: [], events: [] };

async function post(name: string, records: Rec[], into: Rec[]) {
  await h.ingest(ws, name, records);
  into.push(...records);
}

/** Writer w: its own people (profile, attributes, deletions), new and shared deliveries, events. */
/** Writers hold their second half of rounds until the first sync has finished, so syncs really overlap writes (on any machine speed). */
let firstSyncFinished: Promise<void> = Promise.resolve();

async function writer(w: number): Promise<number> {
  let requests = 0;
  const own = (i: number) => `w${w}-p${i}`;
  for (let round = 0; round < ROUNDS; round++) {
    if (round === ROUNDS / 2) await firstSyncFinished;
    const deliveries: Rec[] = [];
    for (let i = 0; i < 8; i++) deliveries.push({ delivery_id: `w${w}-d${round}-${i}`, delivery_type: 'email', campaign_id: w, created_at: stamp() });
    // Shared keys: every writer updates them; the last committed version wins.
    for (let i = 0; i < 6; i++) deliveries.push({ delivery_id: `shared-${(round + i) % 10}`, delivery_type: 'sms', campaign_id: 1000 * w + round, created_at: stamp() });
    await post('deliveries', deliveries, sent.deliveries);
    const people: Rec[] = [];
    for (let i = 0; i < 4; i++) {
      const p = (round * 3 + i) % 8;
      const record: Rec = { internal_customer_id: own(p), customer_id: `w${w}-c${p}`, email_addr: `w${w}.${p}.${round}@example.com`, updated_at: stamp(), attributes: { round, plan: ['free', 'pro', 'team'][(round + i) % 3], [`tag${i}`]: round % 2 ? null : 'on' } };
      if (round === ROUNDS - 2 && i === 0) record.deleted = true;
      if (round === ROUNDS - 1 && i === 1) record.suppressed = true;
      people.push(record);
    }
    await post('people', people, sent.people);
    const attrs: Rec[] = [0, 1, 2].map((i) => ({ internal_customer_id: own((round + i) % 8), attribute_name: `direct${i}`, attribute_value: i === 2 && round % 3 === 0 ? null : `v${round}`, timestamp: stamp() }));
    await post('attributes', attrs, sent.attributes);
    await post('events', [0, 1, 2, 3, 4].map((i) => ({ event_id: `w${w}-e${round}-${i}`, internal_customer_id: own(i), name: 'viewed', type: 'page', data: JSON.stringify({ round }), timestamp: stamp() })), sent.events);
    requests += 4;
  }
  return requests;
}

const mergeOrder: Record<string, string> = { people: 'updated_at DESC', attributes: '"timestamp" DESC', deliveries: 'seq_num DESC', events: 'seq_num DESC' };

/** The warehouse: every file of the type in sequence order, one row per key by the SPEC 5.4 rule. */
async function warehouse(fileType: FileType, files: string[]): Promise<Rec[]> {
  const schema = SCHEMAS[fileType];
  const pk = schema.primaryKey.map((k) => `"${k}"`).join(', ');
  const cols = schema.columns.filter((x) => x.name !== 'seq_num');
  const select = cols.map((x) => (x.type === 'TIMESTAMP' ? `epoch_ms("${x.name}") AS "${x.name}"` : `"${x.name}"`)).join(', ');
  const rows = await duck(
    `SELECT ${select} FROM (SELECT *, row_number() OVER (PARTITION BY ${pk} ORDER BY ${mergeOrder[fileType]}) AS rn FROM read_parquet(${sqlList(files)})) WHERE rn = 1` +
      (fileType === 'attributes' ? ' AND attribute_value IS NOT NULL' : '') +
      ` ORDER BY ${pk}`,
  );
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v])));
}

/** The source's current state, from its logs. */
async function sourceState(fileType: FileType): Promise<Rec[]> {
  const schema = SCHEMAS[fileType];
  const key = (r: Rec) => schema.primaryKey.map((k) => String(r[k])).join('\u0000');
  const sortRows = (rows: Rec[]) => rows.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const columns = schema.columns.filter((x) => x.name !== 'seq_num');
  const shape = (r: Rec) => Object.fromEntries(columns.map((x) => [x.name, x.name === 'workspace_id' ? ws : (r[x.name] ?? null)]));
  if (fileType === 'people') {
    // The latest record of each person (deleted and suppressed people included: their row says so).
    const latest = new Map<string, Rec>();
    for (const { record } of await sourceRecords(h.services, ws, 'people')) latest.set(record.internal_customer_id as string, { ...record, deleted: record.deleted === true, suppressed: record.suppressed === true });
    return sortRows([...latest.values()].map(shape));
  }
  if (fileType === 'attributes') {
    // Replay of the attributes log: the current value of every (person, attribute); null removes.
    const current = new Map<string, Rec>();
    for (const { record } of await sourceRecords(h.services, ws, 'attributes')) {
      const k = key(record);
      if (record.attribute_value === null || record.attribute_value === undefined) current.delete(k);
      else current.set(k, record);
    }
    return sortRows([...current.values()].map(shape));
  }
  const latest = new Map<string, Rec>();
  for (const { record } of await sourceRecords(h.services, ws, fileType)) latest.set(key(record), record);
  return sortRows([...latest.values()].map(shape));
}

describe('concurrent ingest while syncs run', () => {
  it(`${WRITERS} writers × ${ROUNDS} rounds of deliveries, people, attributes and events, syncs back to back: the warehouse equals the source`, async () => {
    // History and the initial sync.
    await post('people', Array.from({ length: 6 }, (_, i) => ({ internal_customer_id: `h-p${i}`, customer_id: `h-c${i}`, created_at: stamp(), updated_at: stamp(), attributes: { plan: 'free', since: 2020 + i } })), sent.people);
    await post('deliveries', Array.from({ length: 30 }, (_, i) => ({ delivery_id: i < 10 ? `shared-${i}` : `h-d${i}`, delivery_type: 'email', created_at: stamp() })), sent.deliveries);
    await post('events', Array.from({ length: 10 }, (_, i) => ({ event_id: `h-e${i}`, name: 'signed_up', type: 'event', timestamp: stamp() })), sent.events);
    expect((await h.call('PUT', `/workspaces/${ws}/integration`, { sasUrl: c.sasUrl, blobPath: 'wh', files: TYPES })).status).toBe(201);

    // Writers and syncs at the same time.
    let writing = true;
    let syncs = 0;
    let releaseWriters = () => {};
    firstSyncFinished = new Promise((resolve) => (releaseWriters = resolve));
    const writers = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w))).finally(() => (writing = false));
    const syncing = (async () => {
      while (writing) {
        // The tick, then its exports (and their continuations) run to the end: a lease check alone
        // could pass before the first export had even started, releasing the writers too early.
        await h.sync(60_000);
        syncs++;
        await waitFor(async () => (await h.services.cursors.list(ws)).every((x) => !x.leaseOwner), 'the sync to finish', 30_000, 25);
        releaseWriters();
      }
    })();
    const requests = (await writers).reduce((a, b) => a + b, 0);
    await syncing;
    // One more sync after the last write.
    await h.sync(60_000);

    const filesByType: Record<string, number> = {};
    const rowsByType: Record<string, number> = {};
    for (const t of TYPES) {
      const names = (await c.list('wh/')).filter((n) => n.startsWith(`wh/${SCHEMAS[t].name}_v4_${ws}_`) && n.endsWith('.parquet'));
      expect(sequenceProblems(t, ws, names, 1), t).toEqual([]);
      const dir = tmpDirFor(t);
      const local = await Promise.all(
        names.map(async (n) => {
          const f = path.join(dir, path.posix.basename(n));
          await c.client.getBlockBlobClient(n).downloadToFile(f);
          return f;
        }),
      );
      const [{ n }] = await duck(`SELECT count(*) AS n FROM read_parquet(${sqlList(local)})`);
      filesByType[t] = names.length;
      rowsByType[t] = Number(n);
      const merged = await warehouse(t, local);
      rmSync(dir, { recursive: true, force: true });
      expect(merged, t).toEqual(await sourceState(t));
    }
    // The source holds exactly what the writers sent (the log has one record per sent record).
    for (const t of ['deliveries', 'events', 'people'] as const) {
      const log = await sourceRecords(h.services, ws, t);
      const key = t === 'deliveries' ? 'delivery_id' : t === 'events' ? 'event_id' : 'internal_customer_id';
      const fingerprint = (r: Rec) => `${r[key]}|${r.campaign_id ?? ''}|${r.email_addr ?? ''}|${r.data ?? ''}`;
      expect(log.map((r) => fingerprint(r.record)).sort(), t).toEqual(sent[t].map(fingerprint).sort());
    }
    const status = await h.call('GET', `/workspaces/${ws}/integration`);
    for (const t of TYPES) expect(status.body.files[t], t).toMatchObject({ pendingChanges: 0, lastError: null, running: false });
    expect(syncs).toBeGreaterThanOrEqual(2);
    summary('concurrent ingest during export', {
      writers: WRITERS,
      ingestRequests: requests,
      recordsSent: Object.fromEntries(Object.entries(sent).map(([k, v]) => [k, v.length])),
      syncsDuringWrites: syncs,
      files: filesByType,
      rowsExported: rowsByType,
      warehouseEqualsSource: true,
    });
  });
});

function tmpDirFor(t: string): string {
  return mkdtempSync(path.join(tmpdir(), `merge-${t}-`));
}
