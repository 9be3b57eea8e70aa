// Pages a writer remembers between its requests (people-recent.ts) are used only while the logs'
// heads are where its own commit left them: another process's commit in between makes it read again.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { freshWorkspace, testServices } from '../../support/env.js';
import { PENDING_MAX_RECORDS, WRITE_STEP_PEOPLE } from '../../../src/lib/source/people-state.js';
import { held, isPage, NODE_BYTES, SKETCH_BYTES, PENDING_RECORD_BYTES, RECENT_MAX_BYTES, RecentPages, rememberedBytes, trimPages, type PageNodes } from '../../../src/lib/source/people-recent.js';
import { mayHold, PARTITIONS, placeOf, sketchOf, withIds, type Page } from '../../../src/lib/source/people-pages.js';
import type { PersonChanges } from '../../../src/lib/source/people-state.js';
import { TABLES } from '../../../src/lib/platform/storage.js';
import { countRequests } from '../../../src/local/requests.js';

let a: Services;
let b: Services;
beforeAll(async () => {
  a = await testServices();
  b = createServices(a.config); // a second process on the same storage
});

const plan = (value: string, people = 50) => Array.from({ length: people }, (_, i) => ({ internal_customer_id: `p${i}`, customer_id: `c${i}`, attributes: { plan: value } }));

describe('remembered people pages', () => {
  it('another writer between two requests: the first writer diffs against the state, not what it remembers', async () => {
    const ws = freshWorkspace();
    expect((await a.ingest.ingest(ws, 'people', plan('pro'))).attributeChanges).toBe(50);
    expect((await b.ingest.ingest(ws, 'people', plan('free'))).attributeChanges).toBe(50);
    // A remembers plan=pro; the state says free: pro again is a change for everyone.
    expect((await a.ingest.ingest(ws, 'people', plan('pro'))).attributeChanges).toBe(50);
    expect((await a.ingest.ingest(ws, 'people', plan('pro'))).attributeChanges).toBe(0);
    // Its own last write, remembered: still exact.
    expect((await a.ingest.ingest(ws, 'people', plan('free', 60))).attributeChanges).toBe(60);
    expect([...(await b.people.get(ws, ['p0', 'p59'])).values()].map((s) => s.attrs.plan[0])).toEqual(['free', 'free']);
  });

  it('a writer holds its changes in memory up to PENDING_MAX_RECORDS: the logs stay the truth for everyone else, and a lost process loses nothing', async () => {
    const ws = freshWorkspace();
    await a.ingest.ingest(ws, 'people', plan('pro'));
    await a.ingest.ingest(ws, 'people', plan('free'));
    // Nothing written yet: the heads say the state is behind the logs.
    const people = await a.source.head(ws, 'people');
    expect(people.seq).toBe(100);
    expect(people.stateSeq).toBe(0);
    // Another process (or this one after a crash, its memory gone) catches up from the logs first.
    const lost = createServices(a.config);
    expect((await lost.ingest.ingest(ws, 'people', plan('free'))).attributeChanges).toBe(0);
    expect((await lost.ingest.ingest(ws, 'people', plan('pro'))).attributeChanges).toBe(50);
    // It caught the state up to what it found (100); its own two requests are in its memory.
    expect((await a.source.head(ws, 'people')).stateSeq).toBe(100);
    // The first writer's memory is stale now (the heads moved): it diffs against the state.
    expect((await a.ingest.ingest(ws, 'people', plan('pro'))).attributeChanges).toBe(0);
    expect((await b.people.get(ws, ['p0'])).get('p0')!.attrs.plan[0]).toBe('pro');
  });

  it('a request that brings the pending records to PENDING_MAX_RECORDS writes them all and marks the heads applied', async () => {
    const ws = freshWorkspace();
    // 10 records a person (the person and 9 attributes, all changed each round), 4 rounds.
    const people = Math.ceil(PENDING_MAX_RECORDS / 10 / 4);
    const batch = (round: number) => Array.from({ length: people }, (_, i) => ({ internal_customer_id: `q${i}`, customer_id: `c${i}`, attributes: Object.fromEntries(Array.from({ length: 9 }, (_, a) => [`a${a}`, round])) }));
    for (let round = 0; round < 4; round++) await a.ingest.ingest(ws, 'people', batch(round));
    const [p, attrs] = await Promise.all([a.source.head(ws, 'people'), a.source.head(ws, 'attributes')]);
    expect(p.seq * 10).toBeGreaterThanOrEqual(PENDING_MAX_RECORDS);
    expect([p.stateSeq, attrs.stateSeq]).toEqual([p.seq, attrs.seq]);
    // Written in steps of WRITE_STEP_PEOPLE people: every person's last round is in the pages, as
    // another process reads them (its own lookups, nothing remembered).
    expect(people).toBeGreaterThan(2 * WRITE_STEP_PEOPLE);
    const ids = Array.from({ length: people }, (_, i) => `q${i}`);
    const states = await createServices(a.config).people.get(ws, ids);
    expect(ids.filter((id) => states.get(id)?.attrs.a8?.[0] !== '3')).toEqual([]);
    expect(states.get('q0')!.pseq).toBeGreaterThan(0);
  });

  it('a process that catches up more people than a step writes them all, step by step', async () => {
    const ws = freshWorkspace();
    const people = 2 * WRITE_STEP_PEOPLE + 500;
    const batch = (round: number) => Array.from({ length: people }, (_, i) => ({ internal_customer_id: `r${i}`, customer_id: `c${i}`, attributes: { plan: `v${round}`, n: round } }));
    await a.ingest.ingest(ws, 'people', batch(1));
    await a.ingest.ingest(ws, 'people', batch(2));
    expect((await a.source.head(ws, 'people')).stateSeq).toBe(0); // pending in a's memory only
    const lost = createServices(a.config);
    const ids = Array.from({ length: people }, (_, i) => `r${i}`);
    const states = await lost.people.get(ws, ids); // catches up from the logs first
    expect(ids.filter((id) => states.get(id)?.attrs.plan?.[0] !== 'v2' || states.get(id)?.attrs.n?.[0] !== '2')).toEqual([]);
    expect((await a.source.head(ws, 'people')).stateSeq).toBe(2 * people);
    expect((await lost.ingest.ingest(ws, 'people', batch(2))).attributeChanges).toBe(0);
  });
});

describe('memory of remembered pages (pure logic)', () => {
  const page = (prefix: string, bytes: number): Page => ({ partition: 0, prefix, people: new Map(), bytes, chars: bytes, baseBytes: 0, deltaBytes: 0, deltas: 0 });
  const nodes = (bytes: number): PageNodes => new Map([[0, new Map([['', page('', bytes)]])]]);
  it('holds at most RECENT_MAX_BYTES over all workspaces, evicting those remembered longest ago', () => {
    const recent = new RecentPages();
    const third = Math.floor((RECENT_MAX_BYTES - SKETCH_BYTES) / 3) - NODE_BYTES; // room left for a sketch (below)
    for (const ws of [1, 2, 3]) recent.remember(ws, { people: ws, attributes: ws }, nodes(third));
    expect([1, 2, 3].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true]);
    recent.remember(4, { people: 4, attributes: 4 }, new Map(), new Map(), Math.floor(third / PENDING_RECORD_BYTES));
    expect([1, 2, 3, 4].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([false, true, true, true]);
    expect(recent.bytes).toBeLessThanOrEqual(RECENT_MAX_BYTES);
    // An entry over the bound alone keeps what fits: here its one page's sketch, not its text, and evicts nothing.
    recent.remember(5, { people: 5, attributes: 5 }, nodes(RECENT_MAX_BYTES + 1));
    expect([2, 3, 4, 5].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true, true]);
    const kept = recent.at(5, { people: 5, attributes: 5 })!.nodes.get(0)!.get('');
    expect(isPage(kept) && !held(kept) && kept.ids).toEqual(new Uint32Array(0));
    // Pending records alone over the bound: not kept.
    recent.remember(6, { people: 6, attributes: 6 }, new Map(), new Map(), Math.ceil(RECENT_MAX_BYTES / PENDING_RECORD_BYTES) + 1);
    expect(recent.at(6, { people: 6, attributes: 6 })).toBeUndefined();
    expect(recent.bytes).toBeLessThanOrEqual(RECENT_MAX_BYTES);
    expect(rememberedBytes(nodes(10), 2)).toBe(NODE_BYTES + 10 + 2 * PENDING_RECORD_BYTES);
  });

  it('lets go of pages, first of their people (a sketch), then of their sketches, not markers, until an entry fits', () => {
    // 10 people a page: a sketch takes SKETCH_BYTES and 40 bytes of hashes.
    const full = (prefix: string): Page => ({ ...page(prefix, 1000), people: new Map(Array.from({ length: 10 }, (_, i) => [`${prefix}p${i}`, '[]'])) });
    const trie: PageNodes = new Map([
      [0, new Map<string, Page | 'split' | 'leaf' | null>([['', 'split'], ['0', full('0')], ['1', full('1')]])],
      [1, new Map<string, Page | 'split' | 'leaf' | null>([['', full('')], ['0', null]])],
    ]);
    const kinds = () => [...trie.values()].flatMap((p) => [...p.values()].map((n) => (held(n) ? 'page' : isPage(n) ? 'sketch' : n)));
    expect(rememberedBytes(trie, 1)).toBe(5 * NODE_BYTES + 3000 + PENDING_RECORD_BYTES);
    const sketch1 = SKETCH_BYTES + 40;
    expect(trimPages(trie, 1, 5 * NODE_BYTES + 2000 + sketch1 + PENDING_RECORD_BYTES)).toBe(5 * NODE_BYTES + 2000 + sketch1 + PENDING_RECORD_BYTES);
    expect(kinds()).toEqual(['split', 'sketch', 'page', 'page', null]);
    // The sketch: the page's ETag and sizes, no people, a hash of each of its ids.
    const sketch = trie.get(0)!.get('0') as Page;
    expect({ ...sketch, ids: undefined }).toEqual({ ...page('0', 1000), ids: undefined });
    expect(sketch.ids!.length).toBe(10);
    expect(Array.from({ length: 10 }, (_, i) => mayHold(sketch.ids!, `0p${i}`))).toEqual(Array(10).fill(true));
    expect(['0p10', '1p0', 'p0'].map((id) => mayHold(sketch.ids!, id))).toEqual([false, false, false]);
    expect(trimPages(trie, 1, 5 * NODE_BYTES + 3 * sketch1 + PENDING_RECORD_BYTES)).toBe(5 * NODE_BYTES + 3 * sketch1 + PENDING_RECORD_BYTES);
    expect(kinds()).toEqual(['split', 'sketch', 'sketch', 'sketch', null]);
    expect(trimPages(trie, 1, 5 * NODE_BYTES + sketch1 + PENDING_RECORD_BYTES)).toBe(5 * NODE_BYTES + sketch1 + PENDING_RECORD_BYTES);
    expect(kinds()).toEqual(['split', 'leaf', 'leaf', 'sketch', null]);
    // Not even the markers fit: nothing is kept of the trie.
    expect(trimPages(trie, 1, NODE_BYTES)).toBe(PENDING_RECORD_BYTES);
    expect(trie.size).toBe(0);
  });
});

/** Requests of `method` on the people state's table (of services `s`) among `requests`: GET, a page read. */
const stateRequests = (s: Services, requests: string[], method = 'GET') => requests.filter((r) => r === `${method} ${s.storage.table(TABLES.peopleState).tableName}`).length;

/** What `run` returns, and the storage requests it made, in order. */
async function counted<T>(run: () => Promise<T>): Promise<[T, string[]]> {
  const log = countRequests();
  try {
    return [await run(), log.requests];
  } finally {
    log.stop();
  }
}

describe('sketches of pages let go of (a workspace larger than memory)', () => {
  const pageReads = (requests: string[]) => stateRequests(a, requests);
  /** Every page held in `nodes` turned into its sketch, as trimPages does under memory pressure. */
  const sketchAll = (nodes: PageNodes) => {
    let pages = 0;
    for (const partition of nodes.values()) for (const [prefix, n] of partition) if (isPage(n) && held(n)) (partition.set(prefix, sketchOf(n)), pages++);
    return pages;
  };
  /** Changes as ingest hands them over: a person record and two attributes, at seqs past every earlier one. */
  let seq = 10_000_000;
  const changesOf = (ids: string[], value: string) =>
    new Map<string, PersonChanges>(
      ids.map((id) => [
        id,
        {
          people: [{ seq: ++seq, record: { internal_customer_id: id, customer_id: `c-${id}`, email_addr: null, deleted: false, suppressed: false, created_at: 1, updated_at: 2 } }],
          attributes: ['plan', 'tier'].map((name) => ({ seq: ++seq, record: { internal_customer_id: id, attribute_name: name, attribute_value: `${name}-${value}`, timestamp: 3 } })),
        },
      ]),
    );
  const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  it('new people need no page read, to look up or to write; a person a sketch may hold has the page read whole', async () => {
    const ws = freshWorkspace();
    const old = ids('s', 2000);
    await b.ingest.ingest(ws, 'people', old.map((id) => ({ internal_customer_id: id, customer_id: `c-${id}`, attributes: { plan: 'pro', tier: `t-${id}` } })));
    await b.people.catchUp(ws); // the pages hold them all
    const nodes = (await a.people.read(ws, old)).nodes;
    expect(sketchAll(nodes)).toBe(PARTITIONS);

    // 50 new people: looked up and written (deltas, blind) without a read.
    const fresh = ids('t', 50);
    const [known, lookup] = await counted(() => a.people.read(ws, fresh, { nodes }));
    expect(pageReads(lookup)).toBe(0);
    expect(fresh.map((id) => known.states.get(id)!.pseq)).toEqual(fresh.map(() => 0));
    const [applied, write] = await counted(() => a.people.apply(ws, changesOf(fresh, 'new'), known));
    expect(pageReads(write)).toBe(0);
    expect(write.length).toBeGreaterThan(0);
    // The nodes as written: still sketches, now holding the new people's hashes, with their new ETags.
    const after = applied!.nodes!;
    const leafOf = (id: string) => [...after.get(placeOf(id).partition)!.values()].find((n): n is Page => isPage(n))!;
    expect(fresh.every((id) => !held(leafOf(id)) && mayHold(leafOf(id).ids!, id))).toBe(true);

    // Another process reads every person from the pages: the old ones untouched, the new ones as written.
    const states = await createServices(a.config).people.get(ws, [...old, ...fresh]);
    expect(old.filter((id) => states.get(id)!.attrs.plan?.[0] !== 'pro' || states.get(id)!.attrs.tier?.[0] !== `t-${id}`)).toEqual([]);
    expect(fresh.filter((id) => states.get(id)!.attrs.plan?.[0] !== 'plan-new' || states.get(id)!.customer_id !== `c-${id}`)).toEqual([]);

    // A person the page holds: that page is read whole (one read), for every person looked up on it
    // (here a new one on the same page: each partition is one page at this size).
    const neighbour = ids('n', 100).find((id) => placeOf(id).partition === placeOf('s7').partition)!;
    const [one, lookupOld] = await counted(() => a.people.read(ws, ['s7', neighbour], { nodes: after }));
    expect(pageReads(lookupOld)).toBe(1);
    expect(one.states.get('s7')!.attrs.tier[0]).toBe('t-s7');
    expect(held(one.pages.get('s7'))).toBe(true);
    expect(one.pages.get(neighbour)).toBe(one.pages.get('s7'));
    expect(one.states.get(neighbour)!.pseq).toBe(0);

    // A new person whose hash the sketch holds (a collision): the page is read, and the person is new.
    const ghost = 'ghost-0';
    const leaf = [...after.get(placeOf(ghost).partition)!.entries()].find(([, n]) => isPage(n))!;
    if (isPage(leaf[1]) && held(leaf[1])) after.get(placeOf(ghost).partition)!.set(leaf[0], sketchOf(leaf[1]));
    const sketch = after.get(placeOf(ghost).partition)!.get(leaf[0]) as Page;
    after.get(placeOf(ghost).partition)!.set(leaf[0], { ...sketch, ids: withIds(sketch.ids!, [ghost]) });
    const [collided, lookupGhost] = await counted(() => a.people.read(ws, [ghost], { nodes: after }));
    expect(pageReads(lookupGhost)).toBe(1);
    expect(collided.states.get(ghost)!.pseq).toBe(0);
    expect(held(collided.pages.get(ghost))).toBe(true);
  });

  it('a sketch whose page changed since (its ETag stale): the blind delta conflicts, the write reads again and both changes stay', async () => {
    const ws = freshWorkspace();
    const old = ids('s', 500);
    const ingest = (plan: string) => b.ingest.ingest(ws, 'people', old.map((id) => ({ internal_customer_id: id, customer_id: `c-${id}`, attributes: { plan } })));
    await ingest('pro');
    await b.people.catchUp(ws);
    const nodes = (await a.people.read(ws, old)).nodes;
    expect(sketchAll(nodes)).toBe(PARTITIONS);
    // Another process rewrites every page meanwhile.
    await ingest('free');
    await b.people.catchUp(ws);
    const fresh = ids('x', 50);
    const known = await a.people.read(ws, fresh, { nodes });
    const applied = await a.people.apply(ws, changesOf(fresh, 'late'), known);
    expect(applied!.nodes).toBeUndefined(); // it conflicted: its nodes are not as written, the next request reads
    const states = await createServices(a.config).people.get(ws, [...old, ...fresh]);
    expect(old.filter((id) => states.get(id)!.attrs.plan?.[0] !== 'free')).toEqual([]);
    expect(fresh.filter((id) => states.get(id)!.attrs.plan?.[0] !== 'plan-late')).toEqual([]);
  });

  it('a sketch whose new lines would outgrow it is read whole and rewritten (split), in the same write', async () => {
    const ws = freshWorkspace();
    const old = ids('s', 300);
    await b.ingest.ingest(ws, 'people', old.map((id) => ({ internal_customer_id: id, customer_id: `c-${id}`, attributes: { plan: 'pro', tier: `t-${id}` } })));
    await b.people.catchUp(ws);
    const nodes = (await a.people.read(ws, old)).nodes;
    expect(sketchAll(nodes)).toBe(PARTITIONS);
    // Ten times the people a page holds: every page's deltas would outgrow its base.
    const fresh = ids('u', 3000);
    const known = await a.people.read(ws, fresh, { nodes });
    const [applied, write] = await counted(() => a.people.apply(ws, changesOf(fresh, 'big'), known));
    expect(pageReads(write)).toBe(PARTITIONS); // each sketch read once, then rewritten
    expect(applied!.nodes).toBeDefined(); // as written (no conflict): the next request starts from them
    const states = await createServices(a.config).people.get(ws, [...old, ...fresh]);
    expect(old.filter((id) => states.get(id)!.attrs.tier?.[0] !== `t-${id}`)).toEqual([]);
    expect(fresh.filter((id) => states.get(id)!.attrs.plan?.[0] !== 'plan-big')).toEqual([]);
  });
});

describe('a workspace larger than the writer memory (PEOPLE_STATE_MEMORY_MB=1), through ingest', () => {
  it('new people are diffed and written without a page read; known people have their pages read; every state exact', async () => {
    const small = await testServices({ PEOPLE_STATE_MEMORY_MB: '1' });
    const ws = freshWorkspace();
    const tier = (i: number) => `tier-${i % 7}-${'x'.repeat(150)}`;
    const person = (i: number, plan: string) => ({ internal_customer_id: `w${i}`, customer_id: `c${i}`, attributes: { plan, tier: tier(i) } });
    const batch = (from: number, n: number, plan: (i: number) => string) => Array.from({ length: n }, (_, j) => person(from + j, plan(from + j)));
    // 8,000 people: ~1.8 MB of page text, over the 1 MiB: the writer holds some of the pages, sketches of the others.
    for (let i = 0; i < 8000; i += 1000) expect((await small.ingest.ingest(ws, 'people', batch(i, 1000, () => 'free'))).attributeChanges).toBe(2000);

    // 1,000 new people: 2 attribute rows each, and no page read (to diff or to write).
    const [added, requests] = await counted(() => small.ingest.ingest(ws, 'people', batch(8000, 1000, () => 'free')));
    expect(added.attributeChanges).toBe(2000);
    // In order: the segment, the commit, then the state write (the bound is small: every request writes).
    const commit = requests.indexOf('POST $batch');
    expect(stateRequests(small, requests.slice(0, commit))).toBe(0); // the diff read no page
    const written = requests.slice(commit);
    // The write appends to pages as deltas without reading them (PATCH: Merge), and reads only the
    // pages it rewrites (PUT: Replace; a sketch whose deltas would outgrow its base).
    expect(stateRequests(small, written, 'PATCH')).toBeGreaterThan(0);
    expect(stateRequests(small, requests)).toBeLessThanOrEqual(stateRequests(small, written, 'PUT'));
    expect((await small.source.head(ws, 'people')).stateSeq).toBe(9000);

    // 1,000 known people, one attribute changed for every other one: their pages are read, and only real changes become rows.
    const [changed, known] = await counted(() => small.ingest.ingest(ws, 'people', batch(3000, 1000, (i) => (i % 2 ? 'pro' : 'free'))));
    expect(changed.attributeChanges).toBe(500);
    expect(stateRequests(small, known)).toBeGreaterThan(0);
    // The same again: nothing changes.
    expect((await small.ingest.ingest(ws, 'people', batch(3000, 1000, (i) => (i % 2 ? 'pro' : 'free')))).attributeChanges).toBe(0);

    // Another process (default memory) reads every person from the pages.
    const ids = Array.from({ length: 9000 }, (_, i) => `w${i}`);
    const states = await createServices(a.config).people.get(ws, ids);
    const expected = (i: number) => (i >= 3000 && i < 4000 && i % 2 ? 'pro' : 'free');
    expect(ids.filter((id, i) => states.get(id)!.attrs.plan?.[0] !== expected(i) || states.get(id)!.attrs.tier?.[0] !== tier(i))).toEqual([]);
  });
});
