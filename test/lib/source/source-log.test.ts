import { describe, expect, it, beforeAll, vi } from 'vitest';
import type { SegmentBatch } from '../../../src/lib/source/segment.js';
import { SourceLog } from '../../../src/lib/source/source-log.js';
import type { AppStorage } from '../../../src/lib/platform/storage.js';
import { int64, TABLES } from '../../../src/lib/platform/storage.js';
import { pad20 } from '../../../src/lib/contract/naming.js';
import { freshWorkspace, testConfig, testStorage } from '../../support/env.js';

let storage: AppStorage;
let log: SourceLog;
beforeAll(async () => {
  storage = await testStorage(testConfig());
  log = new SourceLog(storage);
});

describe('source log', () => {
  it('assigns consecutive seq_nums and reads ranges back in order', async () => {
    const ws = freshWorkspace();
    const a = await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'a' }, { delivery_id: 'b' }] }]);
    const b = await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'c' }] }]);
    expect(a).toEqual([{ fileType: 'deliveries', firstSeq: 1, lastSeq: 2, headEtag: expect.any(String), head: { fileType: 'deliveries', seq: 2, stateSeq: 0, lastSeqKeyedFrom: 1, etag: a[0].headEtag } }]);
    expect(b).toEqual([{ fileType: 'deliveries', firstSeq: 3, lastSeq: 3, headEtag: expect.any(String), head: expect.objectContaining({ seq: 3 }) }]);
    expect((await log.head(ws, 'deliveries')).seq).toBe(3);
    // The head as the commit wrote it is the head as read (a people writer starts from it without reading).
    expect(b[0].head).toEqual(await log.head(ws, 'deliveries'));
    const read = async (after: number, through: number) => {
      const out: string[] = [];
      for await (const r of log.read(ws, 'deliveries', after, through)) out.push(`${r.seq}:${r.record.delivery_id}`);
      return out;
    };
    expect(await read(0, 3)).toEqual(['1:a', '2:b', '3:c']);
    expect(await read(1, 2)).toEqual(['2:b']);
    expect(await read(2, 3)).toEqual(['3:c']);
    expect(await read(3, 3)).toEqual([]);
    // Other file types and workspaces are separate sequences.
    expect((await log.head(ws, 'metrics')).seq).toBe(0);
    expect((await log.head(ws + 1, 'deliveries')).seq).toBe(0);
  });

  it('concurrent writers: seq_nums are unique, gap-free, and each batch is contiguous and visible whole', async () => {
    const ws = freshWorkspace();
    const writers = 8;
    const batches = 6;
    const observed: number[] = [];
    let stop = false;
    // A reader polling during the writes must only ever see a gap-free prefix.
    const reader = (async () => {
      while (!stop) {
        const head = await log.head(ws, 'events');
        let expected = 1;
        for await (const r of log.read(ws, 'events', 0, head.seq)) {
          expect(r.seq).toBe(expected++);
        }
        expect(expected - 1).toBe(head.seq);
        observed.push(head.seq);
      }
    })();
    const results = await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        (async () => {
          const out = [];
          for (let b = 0; b < batches; b++) {
            const records = Array.from({ length: 5 }, (_, i) => ({ event_id: `w${w}b${b}r${i}` }));
            out.push(...(await log.append(ws, [{ fileType: 'events', records }])));
          }
          return out;
        })(),
      ),
    );
    stop = true;
    await reader;
    const ranges = results.flat().sort((x, y) => x.firstSeq - y.firstSeq);
    expect(ranges).toHaveLength(writers * batches);
    let next = 1;
    for (const r of ranges) {
      expect(r.firstSeq).toBe(next);
      expect(r.lastSeq).toBe(next + 4);
      next = r.lastSeq + 1;
    }
    const all = [];
    for await (const r of log.read(ws, 'events', 0, next - 1)) all.push(r);
    expect(all).toHaveLength(writers * batches * 5);
    // Each batch's records are contiguous, in order, under the seq range its append returned.
    for (const r of all) {
      const id = r.record.event_id as string;
      const [w, b, i] = id.match(/\d+/g)!.map(Number);
      const mine = results[w].filter((x) => x.firstSeq <= r.seq && r.seq <= x.lastSeq);
      expect(mine).toHaveLength(1);
      expect(r.seq - mine[0].firstSeq).toBe(i);
      void b;
    }
    expect(observed.length).toBeGreaterThan(0);
  });

  it('reads segments indexed by an earlier version (keyed by firstSeq) together with new ones', async () => {
    const ws = freshWorkspace();
    const index = storage.table(TABLES.sourceIndex);
    const pk = String(ws);
    // As the previous version wrote them: `seg|<ft>|<firstSeq>`, and a head without lastSeqKeyedFrom.
    const legacy = async (firstSeq: number, ids: string[]) => {
      const blob = `${ws}/deliveries/legacy-${firstSeq}.json`;
      const body = Buffer.from(JSON.stringify(ids.map((delivery_id) => ({ delivery_id }))));
      await storage.sourceContainer.getBlockBlobClient(blob).upload(body, body.length);
      await index.createEntity({ partitionKey: pk, rowKey: `seg|deliveries|${pad20(firstSeq)}`, firstSeq: int64(firstSeq), lastSeq: int64(firstSeq + ids.length - 1), blob });
      await index.upsertEntity({ partitionKey: pk, rowKey: 'head|deliveries', seq: int64(firstSeq + ids.length - 1), stateSeq: int64(0) }, 'Replace');
    };
    await legacy(1, ['a', 'b']);
    await legacy(3, ['c']);
    const t0 = Date.now();
    await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'd' }, { delivery_id: 'e' }] }]);
    await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'f' }] }]);
    const head = await log.head(ws, 'deliveries');
    expect(head).toMatchObject({ seq: 6, lastSeqKeyedFrom: 4 });
    const read = async (after: number, through: number) => {
      const out: string[] = [];
      for await (const r of log.read(ws, 'deliveries', after, through)) out.push(`${r.seq}:${r.record.delivery_id}`);
      return out;
    };
    expect(await read(0, 6)).toEqual(['1:a', '2:b', '3:c', '4:d', '5:e', '6:f']);
    expect(await read(1, 4)).toEqual(['2:b', '3:c', '4:d']);
    expect(await read(3, 5)).toEqual(['4:d', '5:e']);
    expect(await read(5, 6)).toEqual(['6:f']);
    expect(await log.oldestCommitAfter(ws, 'deliveries', 0)).toBeLessThanOrEqual(t0);
    expect(await log.oldestCommitAfter(ws, 'deliveries', 3)).toBeGreaterThanOrEqual(t0 - 1000);
    expect(await log.oldestCommitAfter(ws, 'deliveries', 6)).toBeUndefined();
    // A previous-version writer after the upgrade (rolling deploy) drops the marker: still read whole.
    await legacy(7, ['g']);
    // What a head said of segments through 6 stays true (remembered, no head read); a range past it reads the head again.
    expect(await read(4, 6)).toEqual(['5:e', '6:f']);
    expect(await read(4, 7)).toEqual(['5:e', '6:f', '7:g']);
    await log.append(ws, [{ fileType: 'deliveries', records: [{ delivery_id: 'h' }] }]);
    expect(await log.head(ws, 'deliveries')).toMatchObject({ seq: 8, lastSeqKeyedFrom: 8 });
    expect(await read(0, 8)).toEqual(['1:a', '2:b', '3:c', '4:d', '5:e', '6:f', '7:g', '8:h']);
    expect(await read(5, 8)).toEqual(['6:f', '7:g', '8:h']);
  });
});

describe('source log: a plan read kept for the write', () => {
  /** Blob downloads of the source container, counted by range: whole, plan section, rest. */
  function countDownloads() {
    const seen: string[] = [];
    const container = storage.sourceContainer;
    const original = container.getBlockBlobClient.bind(container);
    const spy = vi.spyOn(container, 'getBlockBlobClient').mockImplementation((name: string) => {
      const client = original(name);
      const download = client.download.bind(client);
      vi.spyOn(client, 'download').mockImplementation(((offset?: number, count?: number) => {
        seen.push(offset ? 'rest' : 'from0');
        return download(offset, count);
      }) as typeof client.download);
      return client;
    });
    return { seen, restore: () => spy.mockRestore() };
  }

  it('segments read whole by the plan are not downloaded again; those read by their plan section only, the rest of them', async () => {
    const ws = freshWorkspace();
    const records = (from: number) => Array.from({ length: 3 }, (_, i) => ({ delivery_id: `d${from + i}`, internal_customer_id: `p${i}`, delivery_type: 'email', campaign_id: from + i, created_at: 1000 + i, subject_id: 'é中😀' }));
    for (let k = 0; k < 4; k++) await log.append(ws, [{ fileType: 'deliveries', records: records(3 * k) }]);
    const expected: unknown[] = [];
    for await (const r of log.read(ws, 'deliveries', 0, 12)) expected.push(r);
    const downloads = countDownloads();
    try {
      const held = new Map<number, SegmentBatch>();
      let asked = 0;
      // the first two whole, the others by their plan section
      for await (const { firstSeq, batch } of log.slices(ws, 'deliveries', 0, 12, 'plan', { decode: { asStored: true }, whole: () => asked++ < 2 })) held.set(firstSeq, batch);
      expect([...held.values()].map((b) => b.whole)).toEqual([true, true, false, false]);
      expect(downloads.seen).toEqual(['from0', 'from0', 'from0', 'from0']);
      downloads.seen.length = 0;
      const got: unknown[] = [];
      for await (const { firstSeq, batch, start, end } of log.slices(ws, 'deliveries', 0, 12, 'all', { decode: { asStored: true }, plan: (seq) => held.get(seq) })) {
        for (let i = start; i < end; i++) {
          const record: Record<string, unknown> = {};
          for (const [name, values] of Object.entries(batch.columns)) record[name] = values[i] ?? null;
          for (const [name, values] of Object.entries(batch.utf8 ?? {})) record[name] = values.value(i);
          got.push({ seq: firstSeq + i, record });
        }
      }
      expect(downloads.seen).toEqual(['rest', 'rest']);
      expect(got).toEqual(expected);
    } finally {
      downloads.restore();
    }
  });
});
