// The people state's layout on Azurite (AZURE_LIMITS_STRICT): pages spread over PARTITIONS
// partitions, split as they grow, every person found and listed once; people too large for a page;
// and state written by the previous layout (one entity per person, partition = workspace) migrated.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { encodeKey, int64, TABLES } from '../../../src/lib/platform/storage.js';
import { findLeaves, lineOf, ownKey, packLines, PARTITIONS, pageChars, pageKey, pageOf, partitionKey, placeOf, type Page, type PageNode } from '../../../src/lib/source/people-pages.js';
import { countRequests } from '../../../src/local/requests.js';
import { emptyState, pack } from '../../../src/lib/source/people-codec.js';
import { freshWorkspace, testServices } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

const T0 = Date.parse('2026-01-01T00:00:00Z');
const person = (i: number, valueChars = 40) => ({
  internal_customer_id: `person-${i}`,
  customer_id: `c${i}`,
  updated_at: new Date(T0).toISOString(),
  attributes: Object.fromEntries(Array.from({ length: 5 }, (_, a) => [`a${a}`, `${a}.${'v'.repeat(valueChars)}`])),
});
/** People that fill every partition's root page about `times` over (each person ~1,600 characters). */
const filling = (times: number) => Math.ceil((times * pageChars(0) * PARTITIONS) / JSON.stringify(person(0, 300)).length);

/** The stored layout, once the state is caught up to the logs (a writer may hold its last changes in memory). */
async function entities(ws: number) {
  await services.people.catchUp(ws);
  const out: { partitionKey: string; rowKey: string; split?: boolean }[] = [];
  const filter = `PartitionKey ge '${ws}' and PartitionKey lt '${ws}~~'`;
  for await (const e of services.storage.table(TABLES.peopleState).listEntities({ queryOptions: { filter, select: ['PartitionKey', 'RowKey', 'split'] } })) {
    out.push({ partitionKey: e.partitionKey!, rowKey: e.rowKey!, split: e.split as boolean | undefined });
  }
  return out;
}

async function scanAll(ws: number, stopEvery = Infinity) {
  const ids: string[] = [];
  let after = '';
  for (let more = true; more; ) {
    more = false;
    let n = 0;
    for await (const { person: p, position } of services.people.scan(ws, after)) {
      ids.push(p.internal_customer_id);
      after = position;
      if (++n >= stopEvery) {
        more = true;
        break;
      }
    }
  }
  return ids;
}

describe('people state pages', () => {
  it('spreads a workspace over its partitions in a few pages, splits them as they grow, and finds and lists everyone once', async () => {
    const ws = freshWorkspace();
    const n = 3_000;
    for (let i = 0; i < n; i += 1_000) await services.ingest.ingest(ws, 'people', Array.from({ length: 1_000 }, (_, k) => person(i + k)));
    const rows = await entities(ws);
    const partitions = new Set(rows.filter((r) => r.rowKey.startsWith('g|')).map((r) => r.partitionKey));
    expect(partitions.size).toBe(16);
    expect(partitions.has(String(ws))).toBe(false); // nothing in the previous layout's partition
    // Far fewer entities than people: a page holds many.
    expect(rows.filter((r) => r.rowKey.startsWith('g|')).length).toBeLessThan(n / 20);

    // Enough people to split pages in every partition.
    const big = freshWorkspace();
    const count = filling(3);
    for (let i = 0; i < count; i += 2_000) await services.ingest.ingest(big, 'people', Array.from({ length: Math.min(2_000, count - i) }, (_, k) => person(i + k, 300)));
    const bigRows = await entities(big);
    expect(bigRows.filter((r) => r.split).length).toBeGreaterThan(0);
    // A change to everyone after the splits: every state is found (no attribute row is invented or lost).
    const changed = await services.ingest.ingest(big, 'people', Array.from({ length: 500 }, (_, k) => ({ ...person(k * 7, 300), attributes: { ...person(k * 7, 300).attributes, a0: 'new' } })));
    expect(changed.attributeChanges).toBe(500);
    const states = await services.people.get(big, Array.from({ length: count }, (_, i) => `person-${i}`));
    expect([...states.values()].filter((s) => s.pseq === 0)).toEqual([]);
    // Listed once, resumed after every 997th person, in the state's (partition, bits, id) order.
    const listed = await scanAll(big, 997);
    expect(listed).toHaveLength(count);
    expect(new Set(listed).size).toBe(count);
    const key = (id: string) => `${placeOf(id).partition.toString(16).padStart(2, '0')}|${placeOf(id).bits}`;
    expect(listed.map(key)).toEqual([...listed].map(key).sort());
  });

  it('a scan resumed after its page split lists the rest once', async () => {
    const ws = freshWorkspace();
    const first = Array.from({ length: 400 }, (_, i) => person(i));
    await services.ingest.ingest(ws, 'people', first);
    await services.people.catchUp(ws); // as an initial sync starts (run-plan.ts)
    const seen: string[] = [];
    let after = '';
    for await (const { person: p, position } of services.people.scan(ws)) {
      seen.push(p.internal_customer_id);
      after = position;
      if (seen.length === 150) break;
    }
    // Grow every partition past its root page: the pages the scan stopped in are split.
    const more = filling(2);
    for (let i = 400; i < 400 + more; i += 2_000) await services.ingest.ingest(ws, 'people', Array.from({ length: 2_000 }, (_, k) => person(i + k, 300)));
    expect((await entities(ws)).some((r) => r.rowKey === 'g|' && r.split)).toBe(true);
    expect(seen).toHaveLength(150);
    for await (const { person: p } of services.people.scan(ws, after)) seen.push(p.internal_customer_id);
    expect(seen.length).toBe(new Set(seen).size);
    for (const p of first) expect(seen).toContain(p.internal_customer_id);
  });

  it('keeps a person too large for a page in an entity of its own, and back in the page when small again (Azure limits enforced)', async () => {
    const ws = freshWorkspace();
    const huge = { internal_customer_id: 'huge', customer_id: 'c', attributes: Object.fromEntries(Array.from({ length: 6 }, (_, a) => [`big${a}`, `${a}`.repeat(60_000)])) };
    await services.ingest.ingest(ws, 'people', [huge, ...Array.from({ length: 2_000 }, (_, i) => person(i))]);
    const own = (await entities(ws)).filter((r) => r.rowKey.startsWith('p|'));
    expect(own.map((r) => r.rowKey)).toEqual([ownKey('huge')]);
    expect((await services.people.get(ws, ['huge'])).get('huge')!.attrs.big5[0]).toBe('5'.repeat(60_000));
    expect((await scanAll(ws)).filter((id) => id === 'huge')).toHaveLength(1);
    const removed = Object.fromEntries(Object.keys(huge.attributes).map((k) => [k, null]));
    await services.ingest.ingest(ws, 'people', [{ ...huge, attributes: removed }]);
    expect((await entities(ws)).filter((r) => r.rowKey.startsWith('p|'))).toEqual([]);
    expect((await services.people.get(ws, ['huge'])).get('huge')!.attrs.big0).toEqual([null, expect.any(Number)]);
  });

  it('a page takes small changes as deflated deltas (a Merge), is rewritten whole once they outgrow it, and reads the same either way', async () => {
    const ws = freshWorkspace();
    await services.ingest.ingest(ws, 'people', Array.from({ length: 800 }, (_, i) => person(i)));
    await services.people.catchUp(ws);
    const pk = partitionKey(ws, placeOf('person-1').partition);
    const page = async () => (await services.storage.table(TABLES.peopleState).getEntity(pk, pageKey(''))) as Record<string, unknown>;
    expect((await page()).z0).toBeInstanceOf(Uint8Array);
    expect((await page()).d0).toBeUndefined();
    // One person changed: its line only, appended as a delta.
    const change = (value: string) => services.ingest.ingest(ws, 'people', [{ ...person(1), attributes: { ...person(1).attributes, a0: value } }]);
    expect((await change('v1')).attributeChanges).toBe(1);
    await services.people.catchUp(ws);
    const withDelta = await page();
    expect(withDelta.d0).toBeInstanceOf(Uint8Array);
    expect((withDelta.d0 as Uint8Array).byteLength).toBeLessThan(400);
    expect((await services.people.get(ws, ['person-1'])).get('person-1')!.attrs.a0[0]).toBe('v1');
    // Many changes: the deltas outgrow the base and the page is rewritten (base only), every state intact.
    for (let round = 2; round < 80; round++) {
      await change(`v${round}`.repeat(40));
      await services.people.catchUp(ws);
    }
    const compacted = await page();
    expect(Object.keys(compacted).filter((k) => /^d\d+$/.test(k)).length).toBeLessThan(78);
    const states = await services.people.get(ws, Array.from({ length: 800 }, (_, i) => `person-${i}`));
    expect(states.get('person-1')!.attrs.a0[0]).toBe('v79'.repeat(40));
    expect([...states.values()].filter((s) => s.pseq === 0)).toEqual([]);
  });

  /**
   * A partition's trie in a new workspace: the root split, g|0 a leaf, g|1 split into the leaves g|10
   * and g|11; and a lookup (its leaf's prefix) remembering what it saw in `seen`.
   */
  async function smallTrie(partition: number) {
    const ws = freshWorkspace();
    const table = services.storage.table(TABLES.peopleState);
    const pk = partitionKey(ws, partition);
    const split = new Set([pageKey(''), pageKey('1')]);
    await table.submitTransaction([pageKey(''), pageKey('0'), pageKey('1'), pageKey('10'), pageKey('11')].map((rowKey) => ['create', { partitionKey: pk, rowKey, ...(split.has(rowKey) ? { split: true } : {}) }]));
    const target = (prefix: string) => prefix.padEnd(28, '0');
    const seen = new Map<string, PageNode>();
    const leaf = async (prefix: string) => (await findLeaves(table, ws, partition, [target(prefix)], seen)).get(target(prefix))!.prefix;
    return { table, seen, leaf };
  }

  it('finds a leaf above the depth of its last lookup among the pages it has seen, without a read', async () => {
    const { seen, leaf } = await smallTrie(3);
    expect(await leaf('01')).toBe('0');
    expect(await leaf('10')).toBe('1' + '0'); // the last leaf found is at depth 2: the next lookup starts there
    expect([...seen.keys()].sort()).toEqual(['', '0', '1', '10']);
    const log = countRequests();
    try {
      // "00" was never seen: the leaf is g|0, seen above it (before: a read of g|00, answered 404).
      expect(await leaf('00')).toBe('0');
      expect(await leaf('11')).toBe('11'); // not seen: read
    } finally {
      log.stop();
    }
    expect(log.requests.filter((r) => r.includes('peoplestate'))).toEqual([`GET ${services.storage.table(TABLES.peopleState).tableName}`]);
  });

  it('reads a leaf it let go of (memory) directly, whatever the depth of its last lookup', async () => {
    const { table, seen, leaf } = await smallTrie(5);
    expect(await leaf('01')).toBe('0');
    expect(await leaf('10')).toBe('10'); // the next lookup starts at depth 2
    seen.set('0', 'leaf'); // let go of (people-recent.ts trimPages)
    const log = countRequests();
    try {
      expect(await leaf('00')).toBe('0'); // g|0 read at once (not g|00 first, a 404)
    } finally {
      log.stop();
    }
    expect(log.requests.filter((r) => r.includes('peoplestate'))).toEqual([`GET ${table.tableName}`]);
    expect(typeof seen.get('0')).toBe('object'); // held again
  });

  it('reads a page written before pages were deflated (text in j0, j1, …) and takes changes on top of it', async () => {
    const ws = freshWorkspace();
    const id = 'text-page';
    const state = { ...emptyState(id), customer_id: 'c', created_at: T0, updated_at: T0, attrs: { plan: ['pro', T0] as [string, number] }, pseq: 1, aseq: 1 };
    await services.source.append(ws, [
      { fileType: 'people', records: [{ internal_customer_id: id, customer_id: 'c', deleted: false, suppressed: false, created_at: T0, updated_at: T0 }] },
      { fileType: 'attributes', records: [{ internal_customer_id: id, attribute_name: 'plan', attribute_value: 'pro', timestamp: T0 }] },
    ]);
    await services.people.markApplied(ws, 1, 1);
    const pk = partitionKey(ws, placeOf(id).partition);
    await services.storage.table(TABLES.peopleState).createEntity({ partitionKey: pk, rowKey: pageKey(''), j0: lineOf(id, JSON.stringify(pack(state))) });
    const fresh = createServices(services.config);
    expect((await fresh.ingest.ingest(ws, 'attributes', [{ internal_customer_id: id, attribute_name: 'plan', attribute_value: 'pro' }])).attributeChanges).toBe(0);
    expect((await fresh.ingest.ingest(ws, 'attributes', [{ internal_customer_id: id, attribute_name: 'plan', attribute_value: 'free' }])).attributeChanges).toBe(1);
    await fresh.people.catchUp(ws);
    const e = (await services.storage.table(TABLES.peopleState).getEntity(pk, pageKey(''))) as Record<string, unknown>;
    expect(typeof e.j0).toBe('string');
    expect(e.d0).toBeInstanceOf(Uint8Array);
    expect((await services.people.get(ws, [id])).get(id)!.attrs.plan[0]).toBe('free');
  });

  it('migrates state of the previous layout once: diffs, snapshots and gone people see it', async () => {
    const ws = freshWorkspace();
    const legacy = services.storage.table(TABLES.peopleState);
    const n = 700;
    const ids = Array.from({ length: n }, (_, i) => `old/${i}`);
    // The logs as the previous version left them (seq i + 1 for person i), their state applied.
    await services.source.append(ws, [
      { fileType: 'people', records: ids.map((id, i) => ({ internal_customer_id: id, customer_id: `c${i}`, deleted: i === 3, suppressed: false, created_at: T0, updated_at: T0 })) },
      { fileType: 'attributes', records: ids.map((id) => ({ internal_customer_id: id, attribute_name: 'plan', attribute_value: 'pro', timestamp: T0 })) },
    ]);
    await services.people.markApplied(ws, n, n);
    // Its state as the previous version wrote it: partition = workspace, RowKey = encoded id.
    const attrs = JSON.stringify({ plan: ['pro', T0] });
    for (let i = 0; i < n; i += 100) {
      await legacy.submitTransaction(
        ids.slice(i, i + 100).map((id, k) => {
          const seq = i + k + 1;
          const gone = seq === 4 ? { goneSince: int64(4) } : {};
          return ['create', { partitionKey: String(ws), rowKey: encodeKey(id), customer_id: `c${seq - 1}`, deleted: seq === 4, suppressed: false, ...gone, created_at: int64(T0), updated_at: int64(T0), pseq: int64(seq), aseq: int64(seq), attrs0: attrs }];
        }),
      );
    }
    const fresh = createServices(services.config); // a new process: nothing cached
    // The same value again is no change; a new one is one, exported after the old timestamp.
    const same = await fresh.ingest.ingest(ws, 'attributes', Array.from({ length: 700 }, (_, i) => ({ internal_customer_id: `old/${i}`, attribute_name: 'plan', attribute_value: 'pro', timestamp: new Date(T0 - 5).toISOString() })));
    expect(same.attributeChanges).toBe(0);
    const changed = await fresh.ingest.ingest(ws, 'attributes', [{ internal_customer_id: 'old/5', attribute_name: 'plan', attribute_value: 'free', timestamp: new Date(T0 - 5).toISOString() }]);
    expect(changed.attributeChanges).toBe(1);
    expect((await fresh.people.get(ws, ['old/5'])).get('old/5')!.attrs.plan).toEqual(['free', T0 + 1]);
    const listed = await (async () => {
      const out: string[] = [];
      for await (const { person: p } of fresh.people.scan(ws)) out.push(p.internal_customer_id);
      return out;
    })();
    expect(listed.sort()).toEqual(Array.from({ length: 700 }, (_, i) => `old/${i}`).sort());
    expect([...(await fresh.people.goneAt(ws, ['old/3', 'old/4'], 10))]).toEqual(['old/3']);
    // A snapshot started on the previous layout continues in it, from its position, once.
    const rest: string[] = [];
    for await (const { person: p, position } of fresh.people.scan(ws, encodeKey('old/698'))) {
      rest.push(p.internal_customer_id);
      expect(position).toBe(encodeKey(p.internal_customer_id));
    }
    const after = Array.from({ length: 700 }, (_, i) => `old/${i}`).filter((id) => encodeKey(id) > encodeKey('old/698'));
    expect(rest).toEqual(after.sort((a, b) => (encodeKey(a) < encodeKey(b) ? -1 : 1)));
  });
});

describe('a page as read (pure logic)', () => {
  it('takes the last line of each person, base then deltas, and counts the characters a rewrite would write', () => {
    const ids = ['plain', 'a/b%c#d', 'ünï\u0001', 'p4'];
    const base = packLines(ids.slice(0, 3).map((id, i) => lineOf(id, `{"v":${i}}`)), 'z');
    // Deltas: one person changed twice (the last line wins), one added, ids that need encoding.
    const deltas = packLines([lineOf('a/b%c#d', '{"v":"longer value"}'), lineOf('p4', '{}'), lineOf('a/b%c#d', '{"v":"x"}')], 'd');
    const page = pageOf(2, { rowKey: 'g|01', etag: 'e', ...base.properties, ...deltas.properties });
    if (page === 'split') throw new Error('not a page');
    expect([...page.people]).toEqual([['plain', '{"v":0}'], ['a/b%c#d', '{"v":"x"}'], ['ünï\u0001', '{"v":2}'], ['p4', '{}']]);
    const rewritten = [...page.people].map(([id, v]) => lineOf(id, v)).join('\n');
    expect(page.chars).toBe(rewritten.length);
    expect([page.prefix, page.deltas, page.baseBytes, page.deltaBytes]).toEqual(['01', 1, base.bytes, deltas.bytes]);
  });
});
