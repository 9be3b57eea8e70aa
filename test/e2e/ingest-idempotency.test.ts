// Idempotent ingest (SPEC section 6, issue 10 point 7) through the HTTP route, the local host and Azurite:
// a request repeated with its Idempotency-Key within 24 hours stores nothing and gets the first answer.
import { afterAll, beforeAll, describe, expect, it, inject } from 'vitest';
import { TableClient } from '@azure/data-tables';
import type { Host } from '../../src/local/host.js';
import { startAppHost } from '../support/app-host.js';
import { ManualClock } from '../../src/lib/platform/clock.js';
import { getServices, useClock } from '../../src/lib/services.js';
import type { FileType } from '../../src/lib/contract/schemas.js';
import { TEST_PREFIX, freshWorkspace } from '../support/env.js';

const HOUR = 3600 * 1000;
const clock = new ManualClock(Date.now());
let host: Host;

async function post(ws: number, name: string, body: unknown, key?: string) {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(key === undefined ? {} : { 'idempotency-key': key }) };
  const r = await fetch(`${host.url}/api/workspaces/${ws}/ingest/${name}`, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: r.status, body: (await r.json()) as any };
}

/** The source log of a pair: what the exporter would see. */
async function logOf(ws: number, fileType: FileType) {
  const { source } = await getServices();
  const head = await source.head(ws, fileType);
  const out: Record<string, unknown>[] = [];
  for await (const r of source.read(ws, fileType, 0, head.seq)) out.push({ seq: r.seq, ...r.record });
  return out;
}

/** Row keys of the idempotency entries of a workspace (in the source index partition). */
async function keyRows(ws: number): Promise<string[]> {
  const table = TableClient.fromConnectionString(inject('storageConnectionString'), `${TEST_PREFIX}sourceindex`, { allowInsecureConnection: true });
  const rows: string[] = [];
  for await (const e of table.listEntities({ queryOptions: { filter: `PartitionKey eq '${ws}' and RowKey ge 'idem' and RowKey lt 'idem~'` } })) rows.push(e.rowKey!);
  return rows;
}

const deliveries = (ids: string[]) => ids.map((id) => ({ delivery_id: id, delivery_type: 'email', created_at: '2026-01-01T00:00:00Z' }));

beforeAll(async () => {
  useClock(clock);
  host = await startAppHost({ queue: `idem-${process.pid}` });
});

afterAll(async () => {
  await host?.stop();
});

describe('Idempotency-Key on ingest', () => {
  it('a repeat within 24 hours stores nothing and gets the first answer with replayed: true; after 24 hours it is a new request', async () => {
    const ws = freshWorkspace();
    const other = freshWorkspace();
    const body = deliveries(['a', 'b']);
    expect(await post(ws, 'deliveries', body, 'order-1')).toEqual({ status: 202, body: { accepted: 2 } });
    expect(await post(ws, 'deliveries', body, 'order-1')).toEqual({ status: 202, body: { accepted: 2, replayed: true } });
    expect((await logOf(ws, 'deliveries')).map((r) => r.seq)).toEqual([1, 2]);
    // Another key, or the same key in another workspace, is another request.
    expect(await post(ws, 'deliveries', body, 'order-2')).toEqual({ status: 202, body: { accepted: 2 } });
    expect(await post(other, 'deliveries', body, 'order-1')).toEqual({ status: 202, body: { accepted: 2 } });
    // No key: every request stores.
    expect(await post(ws, 'deliveries', body)).toEqual({ status: 202, body: { accepted: 2 } });
    expect((await logOf(ws, 'deliveries')).length).toBe(6);
    clock.advance(24 * HOUR - 60_000);
    expect((await post(ws, 'deliveries', body, 'order-1')).body).toEqual({ accepted: 2, replayed: true });
    expect((await logOf(ws, 'deliveries')).length).toBe(6);
    clock.advance(2 * 60_000);
    expect((await post(ws, 'deliveries', body, 'order-1')).body).toEqual({ accepted: 2 });
    expect((await logOf(ws, 'deliveries')).length).toBe(8);
    expect((await post(ws, 'deliveries', body, 'order-1')).body).toEqual({ accepted: 2, replayed: true });
  });

  it('people: a repeat replays the first answer and derives no attribute rows, even after the value changed', async () => {
    const ws = freshWorkspace();
    const person = [{ internal_customer_id: 'p1', customer_id: 'c1', attributes: { plan: 'pro' } }];
    expect((await post(ws, 'people', person, 'p-1')).body).toEqual({ accepted: 1, attributeChanges: 1 });
    expect((await post(ws, 'people', person, 'p-1')).body).toEqual({ accepted: 1, attributeChanges: 1, replayed: true });
    // A request that changed nothing is remembered too: its repeat stays no change after the value moved.
    const same = [{ internal_customer_id: 'p1', attribute_name: 'plan', attribute_value: 'pro' }];
    expect((await post(ws, 'attributes', same, 'a-1')).body).toEqual({ accepted: 1, attributeChanges: 0 });
    expect((await post(ws, 'attributes', [{ internal_customer_id: 'p1', attribute_name: 'plan', attribute_value: 'free' }])).status).toBe(202);
    expect((await post(ws, 'attributes', same, 'a-1')).body).toEqual({ accepted: 1, attributeChanges: 0, replayed: true });
    expect((await logOf(ws, 'people')).length).toBe(1);
    expect((await logOf(ws, 'attributes')).map((r) => r.attribute_value)).toEqual(['pro', 'free']);
  });

  it('concurrent duplicates of one key store once, and every one of them gets the first answer', async () => {
    const ws = freshWorkspace();
    const body = deliveries(['x', 'y', 'z']);
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(ws, 'deliveries', body, 'burst')));
    expect(answers.every((a) => a.status === 202 && a.body.accepted === 3)).toBe(true);
    expect(answers.filter((a) => !a.body.replayed)).toHaveLength(1);
    expect((await logOf(ws, 'deliveries')).map((r) => r.seq)).toEqual([1, 2, 3]);

    const people = [{ internal_customer_id: 'q', customer_id: 'c', attributes: { n: 1 } }];
    const peopleAnswers = await Promise.all(Array.from({ length: 8 }, () => post(ws, 'people', people, 'burst-people')));
    expect(peopleAnswers.map((a) => [a.status, a.body.accepted, a.body.attributeChanges])).toEqual(Array(8).fill([202, 1, 1]));
    expect(peopleAnswers.filter((a) => !a.body.replayed)).toHaveLength(1);
    expect((await logOf(ws, 'people')).length).toBe(1);
    expect((await logOf(ws, 'attributes')).length).toBe(1);
  });

  it('a malformed key is a 400 with details, a key reused for another request a 409; neither stores anything', async () => {
    const ws = freshWorkspace();
    for (const key of ['', 'k'.repeat(129), 'tab\there', 'café']) {
      const r = await post(ws, 'deliveries', deliveries(['a']), key);
      expect(r.status, JSON.stringify(key)).toBe(400);
      expect(r.body.error).toMatchObject({ code: 'invalid_idempotency_key', details: [{ path: 'Idempotency-Key', message: expect.any(String) }] });
    }
    expect((await post(ws, 'deliveries', deliveries(['a']), ' ~!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}')).status).toBe(202);
    expect((await post(ws, 'deliveries', deliveries(['a']), 'k'.repeat(128))).status).toBe(202);
    const reused = await post(ws, 'deliveries', deliveries(['b']), 'k'.repeat(128));
    expect(reused.status).toBe(409);
    expect(reused.body.error).toMatchObject({ code: 'idempotency_key_reused', details: [] });
    expect((await post(ws, 'events', deliveries(['a']), 'k'.repeat(128))).status).toBe(400); // invalid body: 400 first
    expect((await logOf(ws, 'deliveries')).map((r) => r.delivery_id)).toEqual(['a', 'a']);
  });

  it('expired keys are swept by later keyed requests of the workspace (Table Storage has no TTL)', async () => {
    const ws = freshWorkspace();
    for (const k of ['s1', 's2', 's3']) await post(ws, 'deliveries', deliveries([k]), k);
    expect(await keyRows(ws)).toHaveLength(6); // per key: the entry and its row in the expiry index
    clock.advance(24 * HOUR + 1000);
    await post(ws, 'deliveries', deliveries(['s4']), 's4');
    expect((await keyRows(ws)).filter((k) => !k.includes('s4'))).toEqual([]);
    expect(await keyRows(ws)).toHaveLength(2);
  });
});
