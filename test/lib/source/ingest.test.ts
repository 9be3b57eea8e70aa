import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../src/lib/services.js';
import { UserError } from '../../../src/lib/platform/errors.js';
import { attrsCharsAtMost, Ingest } from '../../../src/lib/source/ingest.js';
import { IdempotencyKeys } from '../../../src/lib/source/idempotency.js';
import { MAX_PERSON_ATTRIBUTES_CHARS, PeopleState, type PersonState } from '../../../src/lib/source/people-state.js';
import { errorResponse } from '../../../src/lib/platform/http.js';
import { systemClock } from '../../../src/lib/platform/clock.js';
import { freshWorkspace, testServices } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

async function log(ws: number, fileType: 'people' | 'attributes' | 'deliveries') {
  const head = await services.source.head(ws, fileType);
  const out: ({ seq: number } & Record<string, unknown>)[] = [];
  for await (const r of services.source.read(ws, fileType, 0, head.seq)) out.push({ seq: r.seq, ...r.record });
  return out;
}

describe('ingest', () => {
  it('rejects a batch with one bad record entirely, with a field-level list', async () => {
    const ws = freshWorkspace();
    const err = await services.ingest
      .ingest(ws, 'deliveries', [
        { delivery_id: 'a', delivery_type: 'email', created_at: '2026-01-01T00:00:00Z' },
        { delivery_id: '', delivery_type: 'email', created_at: '2026-01-01T00:00:00Z', extra: 1 },
      ])
      .catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).details).toEqual([
      { path: '[1].delivery_id', message: expect.any(String) },
      { path: '[1]', message: expect.stringContaining('extra') },
    ]);
    expect(await log(ws, 'deliveries')).toEqual([]);
    for (const body of [null, {}, [], 'x', [null], [{ delivery_id: 'a' }]]) {
      await expect(services.ingest.ingest(ws, 'deliveries', body)).rejects.toBeInstanceOf(UserError);
    }
    expect(await log(ws, 'deliveries')).toEqual([]);
  });

  it('derives attribute rows from real changes only', async () => {
    const ws = freshWorkspace();
    const at = (d: number) => `2026-01-0${d}T00:00:00Z`;
    await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'p', customer_id: 'c', updated_at: at(1), attributes: { a: 'x', n: 1, b: true } }]);
    await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'p', customer_id: 'c', updated_at: at(2), attributes: { a: 'x', n: 2, gone: null } }]);
    await services.ingest.ingest(ws, 'attributes', [
      { internal_customer_id: 'p', attribute_name: 'b', attribute_value: true, timestamp: at(3) },
      { internal_customer_id: 'p', attribute_name: 'a', attribute_value: null, timestamp: at(3) },
    ]);
    const rows = (await log(ws, 'attributes')).map((r) => [r.seq, r.attribute_name, r.attribute_value]);
    expect(rows).toEqual([
      [1, 'a', 'x'],
      [2, 'n', '1'],
      [3, 'b', 'true'],
      [4, 'n', '2'],
      [5, 'a', null],
    ]);
    const people = await log(ws, 'people');
    expect(people.map((p) => p.seq)).toEqual([1, 2]);
    const state = (await services.people.get(ws, ['p'])).get('p')!;
    // A removal stays in the state as null, with its timestamp (a later change must be exported after it).
    expect(Object.fromEntries(Object.entries(state.attrs).map(([k, [v]]) => [k, v]))).toEqual({ a: null, n: '2', b: 'true' });
    expect([state.pseq, state.aseq]).toEqual([2, 5]);
  });

  it('concurrent people writers: every change lands once, state equals the log replayed', async () => {
    const ws = freshWorkspace();
    const writers = 6;
    await Promise.all(
      Array.from({ length: writers }, (_, w) =>
        (async () => {
          for (let round = 0; round < 4; round++) {
            await services.ingest.ingest(ws, 'people', [
              { internal_customer_id: 'shared', customer_id: 'c', attributes: { [`w${w}`]: round, last: `w${w}r${round}` } },
              { internal_customer_id: `own${w}`, customer_id: `c${w}`, attributes: { round } },
            ]);
          }
        })(),
      ),
    );
    const attrs = await log(ws, 'attributes');
    expect(attrs.map((a) => a.seq)).toEqual(attrs.map((_, i) => i + 1));
    // Replaying the attribute log gives the stored state: no change was lost or invented.
    const replay = new Map<string, unknown>();
    for (const a of attrs) replay.set(`${a.internal_customer_id}|${a.attribute_name}`, a.attribute_value);
    const state = await services.people.get(ws, ['shared', ...Array.from({ length: writers }, (_, w) => `own${w}`)]);
    for (const [id, s] of state) {
      for (const [name, [value]] of Object.entries(s.attrs)) expect(replay.get(`${id}|${name}`)).toBe(value);
    }
    const shared = state.get('shared')!.attrs;
    for (let w = 0; w < writers; w++) expect(shared[`w${w}`][0]).toBe('3');
    // Each writer's own person changed round 0→1→2→3: exactly 4 rows each; `shared.w<n>` 4 rows each.
    for (let w = 0; w < writers; w++) {
      expect(attrs.filter((a) => a.internal_customer_id === `own${w}`)).toHaveLength(4);
      expect(attrs.filter((a) => a.internal_customer_id === 'shared' && a.attribute_name === `w${w}`)).toHaveLength(4);
    }
    expect((await log(ws, 'people')).length).toBe(writers * 4 * 2);
  });

  it('a crash between commit and state update is repaired by the next writer (catch-up)', async () => {
    const ws = freshWorkspace();
    // Commit to the logs without applying the state, as a crashed ingest would leave it.
    await services.source.append(ws, [
      { fileType: 'people', records: [{ internal_customer_id: 'p', customer_id: 'c', deleted: false, suppressed: false, created_at: 1, updated_at: 1 }] },
      { fileType: 'attributes', records: [{ internal_customer_id: 'p', attribute_name: 'plan', attribute_value: 'pro', timestamp: 1 }] },
    ]);
    // Sending the same value again must be no change (the state learns 'pro' from the log first).
    const r = await services.ingest.ingest(ws, 'attributes', [{ internal_customer_id: 'p', attribute_name: 'plan', attribute_value: 'pro' }]);
    expect(r.attributeChanges).toBe(0);
    expect((await log(ws, 'attributes')).length).toBe(1);
    expect((await services.source.head(ws, 'people')).stateSeq).toBe(1);
  });

  // Issue 10.7: a people request whose segments committed and whose state update then failed was
  // answered 500 "the request was not applied", although it was stored and will be exported.
  it('a commit whose follow-up work fails is answered as accepted, and the follow-up is repaired by the next writer', async () => {
    const ws = freshWorkspace();
    class FailingState extends PeopleState {
      override async apply(): Promise<undefined> {
        throw new Error('peoplestate unavailable');
      }
    }
    const deferred: unknown[] = [];
    const failing = new Ingest(services.source, new FailingState(services.storage, services.source), systemClock, new IdempotencyKeys(services.storage, systemClock));
    const answer = await failing.ingest(ws, 'people', [{ internal_customer_id: 'p', customer_id: 'c', attributes: { plan: 'pro' } }], { idempotencyKey: 'k1', onFollowUpError: (e) => deferred.push(e) });
    expect(answer).toEqual({ accepted: 1, attributeChanges: 1 });
    expect(deferred).toEqual([expect.objectContaining({ message: 'peoplestate unavailable' })]);
    expect((await log(ws, 'people')).length).toBe(1);
    // The retry replays; the next writer catches the state up from the log.
    expect(await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'p', customer_id: 'c', attributes: { plan: 'pro' } }], { idempotencyKey: 'k1' })).toEqual({ accepted: 1, attributeChanges: 1, replayed: true });
    expect((await services.ingest.ingest(ws, 'attributes', [{ internal_customer_id: 'p', attribute_name: 'plan', attribute_value: 'pro' }])).attributeChanges).toBe(0);
    expect((await services.people.get(ws, ['p'])).get('p')!.attrs.plan[0]).toBe('pro');
  });

  it('refuses a person whose attributes would outgrow the state, and stores nothing of the request', async () => {
    const ws = freshWorkspace();
    await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'a', customer_id: 'ca', attributes: { plan: 'pro' } }]);
    const before = { people: (await services.source.head(ws, 'people')).seq, attributes: (await services.source.head(ws, 'attributes')).seq };
    // Each value's JSON is twice its length (every character escaped): 4 × 60,000 × 2 > MAX_PERSON_ATTRIBUTES_CHARS.
    const big = Object.fromEntries(Array.from({ length: 4 }, (_, i) => [`q${i}`, '"'.repeat(60_000)]));
    const err = await services.ingest
      .ingest(ws, 'people', [{ internal_customer_id: 'b', customer_id: 'cb' }, { internal_customer_id: 'a', customer_id: 'ca', attributes: big }])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).code).toBe('person_too_large');
    expect({ people: (await services.source.head(ws, 'people')).seq, attributes: (await services.source.head(ws, 'attributes')).seq }).toEqual(before);
    // Three of them fit (360,000 characters of JSON and the rest): accepted.
    await services.ingest.ingest(ws, 'people', [{ internal_customer_id: 'a', customer_id: 'ca', attributes: { q0: big.q0, q1: big.q1, q2: big.q2 } }]);
    expect(Object.keys((await services.people.get(ws, ['a'])).get('a')!.attrs).sort()).toEqual(['plan', 'q0', 'q1', 'q2']);
  });

  it('attrsCharsAtMost bounds the JSON of any attributes from above (the exact size is only computed near the limit)', () => {
    const cases: PersonState['attrs'][] = [
      {},
      { a: [null, 0] },
      { ['\u0000"\\\n']: ['\u0001\u001f"\\', -8_640_000_000_000_000] },
      { é: ['😀'.repeat(10), 1.5e300], plan: ['pro', 1_700_000_000_000] },
      Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`n${i}`, [i % 2 ? null : 'x'.repeat(i), -i] as [string | null, number]])),
    ];
    const proto: PersonState['attrs'] = {};
    Object.defineProperty(proto, '__proto__', { value: ['v', 1], enumerable: true });
    cases.push(proto);
    for (const attrs of cases) expect(attrsCharsAtMost(attrs)).toBeGreaterThanOrEqual(JSON.stringify(attrs).length);
    expect(attrsCharsAtMost({ q: ['"'.repeat(MAX_PERSON_ATTRIBUTES_CHARS), 0] })).toBeGreaterThan(MAX_PERSON_ATTRIBUTES_CHARS);
  });

  it('an unexpected error is never answered as "not applied" (it may have been)', () => {
    const r = errorResponse(new Error('socket hang up'), () => undefined);
    expect(r.status).toBe(500);
    expect((r.jsonBody as { error: { message: string } }).error.message).not.toMatch(/not applied/);
    expect((r.jsonBody as { error: { details: unknown } }).error.details).toEqual([]);
  });
});

