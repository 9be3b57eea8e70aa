// The pure parts of anonymization: which column names a row's owner, what is nulled, how a file's
// owners resolve (content through its delivery), and when a person counts as gone at a log position.
import { describe, expect, it } from 'vitest';
import { anonymizer, anonymizeColumns, ownerColumn } from '../../../src/lib/export/anonymize.js';
import { applyPersonRecord, goneAt, type PersonState } from '../../../src/lib/source/people-state.js';

const state = (): PersonState => ({ internal_customer_id: 'p', customer_id: 'c', email_addr: null, deleted: false, suppressed: false, created_at: 0, updated_at: 0, attrs: {}, goneSince: null, goneBefore: [], pseq: 0, aseq: 0 });
const apply = (s: PersonState, seq: number, flags: { deleted?: boolean; suppressed?: boolean }) =>
  applyPersonRecord(s, seq, { customer_id: 'c', internal_customer_id: 'p', created_at: 0, updated_at: seq, ...flags });

describe('ownerColumn', () => {
  it('content by its delivery, person-carrying history types by their id, the others not at all', () => {
    expect(ownerColumn('content')).toBe('delivery_id');
    for (const t of ['deliveries', 'subjects', 'events'] as const) expect(ownerColumn(t)).toBe('internal_customer_id');
    for (const t of ['metrics', 'outputs', 'people', 'attributes'] as const) expect(ownerColumn(t)).toBeUndefined();
  });
});

describe('anonymizeColumns', () => {
  it('nulls the id of each row whose person is anonymized, and only those', () => {
    const columns = { delivery_id: ['d1', 'd2', 'd3'], internal_customer_id: ['gone', 'alive', null], recipient: ['x', 'y', 'z'] };
    anonymizeColumns(columns, 'internal_customer_id', new Set(['gone']));
    expect(columns).toEqual({ delivery_id: ['d1', 'd2', 'd3'], internal_customer_id: [null, 'alive', null], recipient: ['x', 'y', 'z'] });
  });

  it('nulls the recipient of a content row by its delivery, whatever the recipient holds', () => {
    const recipients = ['gone@example.com', '+15550001111', 'device-token', 'shared@example.com'];
    const columns = { delivery_id: [...recipients.map(() => 'd-gone'), 'd-live'], recipient: [...recipients, 'shared@example.com'], body: recipients.map(() => 'b') };
    anonymizeColumns(columns, 'delivery_id', new Set(['d-gone']));
    expect(columns.recipient).toEqual([null, null, null, null, 'shared@example.com']);
    expect(columns.body).toEqual(['b', 'b', 'b', 'b']);
  });

  it('leaves rows without the target column as they are (it is null already)', () => {
    const columns: Record<string, unknown[]> = { delivery_id: ['d-gone'] };
    anonymizeColumns(columns, 'delivery_id', new Set(['d-gone']));
    expect(columns).toEqual({ delivery_id: ['d-gone'] });
  });
});

describe('anonymizer', () => {
  const people = { anyGone: async () => true, goneAt: async (_ws: number, ids: Iterable<string>, seq: number) => new Set([...ids].filter((id) => id === 'gone' && seq >= 5)) };
  const deliveryOwners = { owners: async () => new Map<string, string | null>([['d1', 'gone'], ['d2', 'alive'], ['d3', null]]) };

  it('resolves content deliveries to those of gone people; unknown and person-less deliveries are not', async () => {
    const a = anonymizer({ people, deliveryOwners }, 1, 'content', 5)!;
    expect(a.column).toBe('delivery_id');
    expect(await a.resolve(['d1', 'd2', 'd3', 'd-unknown'])).toEqual(new Set(['d1']));
  });

  it('uses the position fixed for the generation', async () => {
    expect(await anonymizer({ people, deliveryOwners }, 1, 'deliveries', 4)!.resolve(['gone'])).toEqual(new Set());
    expect(await anonymizer({ people, deliveryOwners }, 1, 'deliveries', 5)!.resolve(['gone', 'alive'])).toEqual(new Set(['gone']));
    expect(anonymizer({ people, deliveryOwners }, 1, 'metrics', 5)).toBeUndefined();
  });
});

describe('goneAt (people state)', () => {
  it('is true from the record that deleted or suppressed the person, and stays true for positions inside an earlier span', () => {
    const s = state();
    apply(s, 3, {});
    apply(s, 5, { deleted: true });
    apply(s, 6, { deleted: true, suppressed: true }); // still gone: the span keeps its start
    expect([4, 5, 6, 100].map((seq) => goneAt(s, seq))).toEqual([false, true, true, true]);
    apply(s, 9, {}); // restored
    expect(s.goneSince).toBeNull();
    expect([4, 5, 8, 9, 100].map((seq) => goneAt(s, seq))).toEqual([false, true, true, false, false]);
    apply(s, 12, { suppressed: true });
    expect([8, 10, 12].map((seq) => goneAt(s, seq))).toEqual([true, false, true]);
  });

  it('keeps a bounded number of spans, merging the oldest (wider, so never less anonymized)', () => {
    const s = state();
    for (let i = 0; i < 2_000; i++) {
      apply(s, 4 * i + 1, { deleted: true });
      apply(s, 4 * i + 3, {});
    }
    expect(s.goneBefore.length).toBeLessThanOrEqual(500);
    for (let i = 0; i < 2_000; i++) expect(goneAt(s, 4 * i + 2), `seq ${4 * i + 2}`).toBe(true);
    expect(goneAt(s, 4 * 1_999 + 3)).toBe(false);
  });
});
