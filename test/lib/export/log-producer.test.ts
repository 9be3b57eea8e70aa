// The log-ordered producer on its own, over a real source log in Azurite: which rows a file carries
// (one per key, the latest version in range), where it ends, and how the limits and the events
// window cut it.
import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../src/lib/services.js';
import { logProducer } from '../../../src/lib/export/log-producer.js';
import type { Row } from '../../../src/lib/parquet/writer.js';
import { freshWorkspace, testServices } from '../../support/env.js';
import { collectRows } from '../../support/row-sink.js';
import { int64, TABLES } from '../../../src/lib/platform/storage.js';
import { pad20 } from '../../../src/lib/contract/naming.js';
import { approxSize } from '../../../src/lib/source/segment.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const delivery = (id: string, campaign = 7) => ({ delivery_id: id, internal_customer_id: `p-${id}`, delivery_type: 'email', campaign_id: campaign, created_at: iso(T0) });

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

async function produce(ws: number, fileType: 'deliveries' | 'events', after: number, target: number, limits = { maxRowsPerFile: 1000, maxBytesPerFile: 1 << 30 }, since?: number, version: 'v1' | 'v4' = 'v4') {
  const { rows, ...sink } = collectRows();
  const result = await logProducer(services.source, limits, { workspaceId: ws, fileType, after, target, since }, { version })({ ...sink });
  return { ...result, rows };
}

describe('log producer', () => {
  it('carries the latest version of each key in range, with workspace_id and seq_num, and ends at the target', async () => {
    const ws = freshWorkspace();
    const t0 = Date.now();
    await services.ingest.ingest(ws, 'deliveries', [delivery('a'), delivery('b'), delivery('a', 8)]);
    const t1 = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    await services.ingest.ingest(ws, 'deliveries', [delivery('c'), delivery('b', 9)]);
    const t2 = Date.now();
    const all = await produce(ws, 'deliveries', 0, 5);
    expect(all.end).toBe(5);
    // The oldest change a file carries was committed with the first segment of its range (the file's lag).
    expect(all.oldestCommit).toBeGreaterThanOrEqual(t0 - 1000);
    expect(all.oldestCommit).toBeLessThanOrEqual(t1 + 1000);
    const later = await produce(ws, 'deliveries', 3, 5);
    expect(later.oldestCommit).toBeGreaterThan(all.oldestCommit!);
    expect(later.oldestCommit).toBeLessThanOrEqual(t2 + 1000);
    expect(all.rows.map((r) => [r.delivery_id, r.campaign_id, r.seq_num, r.workspace_id])).toEqual([
      ['a', 8, 3, ws],
      ['c', 7, 4, ws],
      ['b', 9, 5, ws],
    ]);
    // A range that stops before the later versions carries the earlier ones.
    const early = await produce(ws, 'deliveries', 0, 2);
    expect(early.rows.map((r) => [r.delivery_id, r.seq_num])).toEqual([['a', 1], ['b', 2]]);
    // Schema v1 has no seq_num column.
    expect((await produce(ws, 'deliveries', 3, 5, undefined, undefined, 'v1')).rows.every((r) => !('seq_num' in r))).toBe(true);
  });

  it('cuts the file at the row limit without splitting a key, and the next file starts where it ended', async () => {
    const ws = freshWorkspace();
    await services.ingest.ingest(ws, 'deliveries', ['a', 'b', 'a', 'c', 'd', 'e'].map((id, i) => delivery(id, i)));
    const first = await produce(ws, 'deliveries', 0, 6, { maxRowsPerFile: 2, maxBytesPerFile: 1 << 30 });
    // Rows go out in log order; `a` is carried in its later version, so the cut never splits it.
    expect(first.rows.map((r) => [r.delivery_id, r.seq_num])).toEqual([['b', 2], ['a', 3]]);
    expect(first.end).toBe(3);
    expect(first.complete).toBe(false);
    const second = await produce(ws, 'deliveries', first.end as number, 6, { maxRowsPerFile: 2, maxBytesPerFile: 1 << 30 });
    expect(second.rows.map((r) => r.delivery_id)).toEqual(['c', 'd']);
    expect(second.end).toBe(5);
    const third = await produce(ws, 'deliveries', second.end as number, 6, { maxRowsPerFile: 2, maxBytesPerFile: 1 << 30 });
    expect(third.rows.map((r) => r.delivery_id)).toEqual(['e']);
    expect(third.end).toBe(6);
    // The file reaching the target says so: the run completes with it.
    expect(third.complete).toBe(true);
    expect(await produce(ws, 'deliveries', 6, 6)).toEqual({ rows: [], end: 6, complete: true });
  });

  it('the events window leaves older events out and still reaches the target', async () => {
    const ws = freshWorkspace();
    const event = (id: string, at: number) => ({ event_id: id, internal_customer_id: 'p', name: 'x', type: 'event', timestamp: iso(at) });
    await services.ingest.ingest(ws, 'events', [event('old', T0 - 1), event('new', T0), event('older', T0 - 5000)]);
    const r = await produce(ws, 'events', 0, 3, undefined, T0);
    expect(r.rows.map((x) => x.event_id)).toEqual(['new']);
    expect(r.end).toBe(3);
    const none = await produce(ws, 'events', 0, 1, undefined, T0);
    expect(none).toEqual({ rows: [], end: 1, complete: true });
  });

  it('an event re-sent with a time outside the window keeps its version inside it', async () => {
    const ws = freshWorkspace();
    const event = (id: string, at: number, name: string) => ({ event_id: id, internal_customer_id: 'p', name, type: 'event', timestamp: iso(at) });
    await services.ingest.ingest(ws, 'events', [event('x', T0, 'first'), event('y', T0, 'y')]);
    await services.ingest.ingest(ws, 'events', [event('x', T0 - 1, 'late')]);
    const r = await produce(ws, 'events', 0, 3, undefined, T0);
    expect(r.rows.map((x) => [x.event_id, x.name, x.seq_num])).toEqual([['x', 'first', 1], ['y', 'y', 2]]);
  });

  it('plans and writes over segments of an earlier version (JSON records) and of this one alike', async () => {
    const ws = freshWorkspace();
    const index = services.storage.table(TABLES.sourceIndex);
    // Seqs 1-3 as the previous version stored them: a JSON array of records, no planBytes.
    const blob = `${ws}/deliveries/legacy.json`;
    const records = [{ delivery_id: 'a', delivery_type: 'email', created_at: T0, campaign_id: 1 }, { delivery_id: 'b', delivery_type: 'sms', created_at: T0 }, { delivery_id: 'c', delivery_type: 'push', created_at: T0 }];
    const body = Buffer.from(JSON.stringify(records));
    await services.storage.sourceContainer.getBlockBlobClient(blob).upload(body, body.length);
    await index.createEntity({ partitionKey: String(ws), rowKey: `segl|deliveries|${pad20(3)}`, firstSeq: int64(1), lastSeq: int64(3), blob });
    await index.createEntity({ partitionKey: String(ws), rowKey: 'head|deliveries', seq: int64(3), stateSeq: int64(0), lastSeqKeyedFrom: int64(1) });
    await services.ingest.ingest(ws, 'deliveries', [delivery('b', 2), delivery('d')]);
    const all = await produce(ws, 'deliveries', 0, 5);
    expect(all.rows.map((r) => [r.delivery_id, r.campaign_id ?? null, r.delivery_type, r.seq_num])).toEqual([
      ['a', 1, 'email', 1],
      ['c', null, 'push', 3],
      ['b', 2, 'email', 4],
      ['d', 7, 'email', 5],
    ]);
    // The byte limit counts the sizes of earlier-format records too: two rows fit, the third does not.
    const size = approxSize(records[0]);
    const cut = await produce(ws, 'deliveries', 0, 5, { maxRowsPerFile: 1000, maxBytesPerFile: size * 2 + 1 });
    expect(cut.rows.map((r) => r.delivery_id)).toEqual(['a', 'b']);
    expect(cut.end).toBe(2);
  });
});
