// Pages a writer remembers between its requests (people-recent.ts) are used only while the logs'
// heads are where its own commit left them: another process's commit in between makes it read again.
import { beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../../../src/lib/services.js';
import { freshWorkspace, testServices } from '../../support/env.js';

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
});
