// Pages a writer remembers between its requests (people-recent.ts) are used only while the logs'
// heads are where its own commit left them: another process's commit in between makes it read again.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { freshWorkspace, testServices } from '../../support/env.js';
import { PENDING_MAX_RECORDS, WRITE_STEP_PEOPLE } from '../../../src/lib/source/people-state.js';
import { NODE_BYTES, PENDING_RECORD_BYTES, RECENT_MAX_BYTES, RecentPages, rememberedBytes, trimPages, type PageNodes } from '../../../src/lib/source/people-recent.js';
import type { Page } from '../../../src/lib/source/people-pages.js';

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
    const third = Math.floor(RECENT_MAX_BYTES / 3) - NODE_BYTES;
    for (const ws of [1, 2, 3]) recent.remember(ws, { people: ws, attributes: ws }, nodes(third));
    expect([1, 2, 3].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true]);
    recent.remember(4, { people: 4, attributes: 4 }, new Map(), new Map(), Math.floor(third / PENDING_RECORD_BYTES));
    expect([1, 2, 3, 4].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([false, true, true, true]);
    expect(recent.bytes).toBeLessThanOrEqual(RECENT_MAX_BYTES);
    // An entry over the bound alone keeps what fits: here not its one page (a leaf not held), and evicts nothing.
    recent.remember(5, { people: 5, attributes: 5 }, nodes(RECENT_MAX_BYTES + 1));
    expect([2, 3, 4, 5].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true, true]);
    expect(recent.at(5, { people: 5, attributes: 5 })!.nodes.get(0)!.get('')).toBe('leaf');
    // Pending records alone over the bound: not kept.
    recent.remember(6, { people: 6, attributes: 6 }, new Map(), new Map(), Math.ceil(RECENT_MAX_BYTES / PENDING_RECORD_BYTES) + 1);
    expect(recent.at(6, { people: 6, attributes: 6 })).toBeUndefined();
    expect(recent.bytes).toBeLessThanOrEqual(RECENT_MAX_BYTES);
    expect(rememberedBytes(nodes(10), 2)).toBe(NODE_BYTES + 10 + 2 * PENDING_RECORD_BYTES);
  });

  it('lets go of pages, not markers, until an entry fits: a workspace larger than memory keeps what fits', () => {
    const trie: PageNodes = new Map([
      [0, new Map<string, Page | 'split' | 'leaf' | null>([['', 'split'], ['0', page('0', 1000)], ['1', page('1', 1000)]])],
      [1, new Map<string, Page | 'split' | 'leaf' | null>([['', page('', 1000)], ['0', null]])],
    ]);
    expect(rememberedBytes(trie, 1)).toBe(5 * NODE_BYTES + 3000 + PENDING_RECORD_BYTES);
    expect(trimPages(trie, 1, 5 * NODE_BYTES + 2000 + PENDING_RECORD_BYTES)).toBe(5 * NODE_BYTES + 2000 + PENDING_RECORD_BYTES);
    expect([...trie.get(0)!.values()].map((n) => (typeof n === 'object' && n ? n.prefix : n))).toEqual(['split', 'leaf', '1']);
    expect(trimPages(trie, 1, 5 * NODE_BYTES + PENDING_RECORD_BYTES)).toBe(5 * NODE_BYTES + PENDING_RECORD_BYTES);
    expect([...trie.values()].flatMap((p) => [...p.values()])).toEqual(['split', 'leaf', 'leaf', 'leaf', null]);
    // Not even the markers fit: nothing is kept of the trie.
    expect(trimPages(trie, 1, NODE_BYTES)).toBe(PENDING_RECORD_BYTES);
    expect(trie.size).toBe(0);
  });
});
