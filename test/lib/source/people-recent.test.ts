// Pages a writer remembers between its requests (people-recent.ts) are used only while the logs'
// heads are where its own commit left them: another process's commit in between makes it read again.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { freshWorkspace, testServices } from '../../support/env.js';
import { PENDING_MAX_RECORDS } from '../../../src/lib/source/people-state.js';
import { PENDING_RECORD_BYTES, RECENT_MAX_BYTES, RecentPages, rememberedBytes, type PageNodes } from '../../../src/lib/source/people-recent.js';

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
  });
});

describe('memory of remembered pages (pure logic)', () => {
  const nodes = (bytes: number): PageNodes => new Map([[0, new Map([['', { partition: 0, prefix: '', people: new Map(), bytes, chars: bytes, baseBytes: 0, deltaBytes: 0, deltas: 0 }]])]]);
  it('holds at most RECENT_MAX_BYTES over all workspaces, evicting those remembered longest ago', () => {
    const recent = new RecentPages();
    const third = Math.floor(RECENT_MAX_BYTES / 3);
    for (const ws of [1, 2, 3]) recent.remember(ws, { people: ws, attributes: ws }, nodes(third));
    expect([1, 2, 3].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true]);
    recent.remember(4, { people: 4, attributes: 4 }, new Map(), new Map(), Math.floor(third / PENDING_RECORD_BYTES));
    expect([1, 2, 3, 4].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([false, true, true, true]);
    expect(recent.bytes).toBeLessThanOrEqual(RECENT_MAX_BYTES);
    // An entry over the bound alone is not kept (and evicts nothing).
    recent.remember(5, { people: 5, attributes: 5 }, nodes(RECENT_MAX_BYTES + 1));
    expect([2, 3, 4, 5].map((ws) => recent.at(ws, { people: ws, attributes: ws }) !== undefined)).toEqual([true, true, true, false]);
    expect(rememberedBytes(nodes(10), 2)).toBe(10 + 2 * PENDING_RECORD_BYTES);
  });
});
