// The segment format (source/segment.ts): what ingest stores is what the export and the log readers
// get back, value for value, whatever the values; and a plan read sees only the plan columns.
import { describe, expect, it } from 'vitest';
import { decodeSegment, encodeSegment, planColumns, recordAt, type SourceRecord } from '../../../src/lib/source/segment.js';
import { approxSize } from '../../../src/lib/source/segment.js';

const records: SourceRecord[] = [
  { delivery_id: 'd1', internal_customer_id: 'p1', delivery_type: 'email', campaign_id: 7, created_at: 1_767_225_600_123 },
  { delivery_id: 'd2', delivery_type: 'push', campaign_id: 9_007_199_254_740_991, created_at: 0, subject_id: 'é中😀' },
  { delivery_id: 'd3', internal_customer_id: '', delivery_type: 'sms', created_at: -5 },
];

describe('segment format', () => {
  it('gives back every record as ingested, with null where it had no value', () => {
    const { body, planBytes } = encodeSegment('deliveries', records);
    const batch = decodeSegment(body, planBytes);
    expect(batch.rows).toBe(3);
    const names = ['delivery_id', 'internal_customer_id', 'delivery_type', 'campaign_id', 'created_at', 'subject_id'];
    for (const [i, r] of records.entries()) {
      expect(recordAt(batch, i)).toEqual(Object.fromEntries(names.map((n) => [n, r[n] ?? null])));
      expect(batch.size[i]).toBe(approxSize(r));
    }
  });

  it('a plan read (the first planBytes bytes) has the plan columns and sizes only', () => {
    const { body, planBytes } = encodeSegment('deliveries', records);
    const plan = decodeSegment(body.subarray(0, planBytes), planBytes);
    expect(planColumns('deliveries')).toEqual(['delivery_id', 'internal_customer_id']);
    expect(Object.keys(plan.columns).sort()).toEqual(['delivery_id', 'internal_customer_id']);
    expect(plan.columns.internal_customer_id).toEqual(['p1', null, '']);
    expect(Array.from(plan.size)).toEqual(records.map(approxSize));
    expect(planColumns('events')).toEqual(['event_id', 'internal_customer_id', 'timestamp']);
    expect(planColumns('attributes')).toEqual(['internal_customer_id', 'attribute_name']);
  });

  it('keeps booleans, explicit nulls, lone surrogates and mixed types exactly', () => {
    const odd: SourceRecord[] = [
      { internal_customer_id: 'a', deleted: true, email_addr: 'x\uD800y', mixed: 1, attribute_value: null },
      { internal_customer_id: 'b', deleted: false, email_addr: '\uDC00', mixed: 'one', attribute_value: 'v' },
      { internal_customer_id: 'c', email_addr: null, mixed: true },
    ];
    const { body, planBytes } = encodeSegment('people', odd);
    const batch = decodeSegment(body, planBytes);
    expect([0, 1, 2].map((i) => recordAt(batch, i))).toEqual([
      { internal_customer_id: 'a', deleted: true, email_addr: 'x\uD800y', mixed: 1, attribute_value: null },
      { internal_customer_id: 'b', deleted: false, email_addr: '\uDC00', mixed: 'one', attribute_value: 'v' },
      { internal_customer_id: 'c', deleted: null, email_addr: null, mixed: true, attribute_value: null },
    ]);
  });

  it('reads segments of earlier versions (a JSON array of records)', () => {
    const batch = decodeSegment(Buffer.from(JSON.stringify(records)), undefined);
    expect(batch.rows).toBe(3);
    expect(recordAt(batch, 1)).toMatchObject({ delivery_id: 'd2', subject_id: 'é中😀', internal_customer_id: null });
    expect(Array.from(batch.size)).toEqual(records.map(approxSize));
  });

  it('an empty segment section and a segment of one record', () => {
    const one = encodeSegment('metrics', [{ delivery_id: 'd', metric: 'sent', created_at: 1 }]);
    expect(recordAt(decodeSegment(one.body, one.planBytes), 0)).toEqual({ delivery_id: 'd', metric: 'sent', created_at: 1 });
  });

  it('long values (content bodies), ASCII or not, come back whole and exact', () => {
    const body = (i: number, extra: string) => `<p>${String(i).repeat(400)}${extra}</p>`;
    const contents: SourceRecord[] = [
      { delivery_id: 'd1', body: body(1, ''), subject: 'a' },
      { delivery_id: 'd2', body: null, subject: 'b' },
      { delivery_id: 'd3', body: body(3, ''), subject: 'c' },
    ];
    const accented = contents.map((c, i) => ({ ...c, body: i === 1 ? null : `${c.body}é😀` }));
    for (const records of [contents, accented]) {
      const { body: blob, planBytes } = encodeSegment('content', records);
      const batch = decodeSegment(blob, planBytes);
      expect(batch.columns.body).toEqual(records.map((r) => r.body));
      expect(batch.columns.subject).toEqual(['a', 'b', 'c']);
    }
  });
});
