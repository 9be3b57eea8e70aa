import { describe, expect, it, beforeAll } from 'vitest';
import { SourceLog } from '../../../src/lib/source/source-log.js';
import type { AppStorage } from '../../../src/lib/platform/storage.js';
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
    expect(a).toEqual([{ fileType: 'deliveries', firstSeq: 1, lastSeq: 2 }]);
    expect(b).toEqual([{ fileType: 'deliveries', firstSeq: 3, lastSeq: 3 }]);
    expect((await log.head(ws, 'deliveries')).seq).toBe(3);
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
});
