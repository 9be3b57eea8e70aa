// The plan's key set (export/key-index.ts): a key is the same key whatever format its segment
// stored it in, different keys never meet (composite keys, nulls, lone surrogates, hash collisions
// in a table that grows), and each key's latest version is the one kept.
import { describe, expect, it } from 'vitest';
import { KeyIndex, keyReader } from '../../../src/lib/export/key-index.js';
import { decodeSegment, encodeSegment, type SegmentBatch, type SourceRecord } from '../../../src/lib/source/segment.js';

/** The same records decoded every way the plan may meet them: as bytes, as strings, as an earlier version's JSON. */
function decodings(fileType: 'deliveries' | 'attributes', records: SourceRecord[]): SegmentBatch[] {
  const { body, planBytes } = encodeSegment(fileType, records);
  return [
    decodeSegment(body.subarray(0, planBytes), planBytes, { asStored: true }),
    decodeSegment(body.subarray(0, planBytes), planBytes),
    decodeSegment(Buffer.from(JSON.stringify(records)), undefined),
  ];
}

function keysOf(primaryKey: string[], batch: SegmentBatch): string[] {
  const key = keyReader(primaryKey)(batch);
  return Array.from({ length: batch.rows }, (_, i) => {
    const { bytes, from, to } = key(i);
    return Buffer.from(bytes.subarray(from, to)).toString('hex');
  });
}

describe('key index', () => {
  it('reads the same bytes for a key from every segment format, and different bytes for different keys', () => {
    const ids = ['d1', 'é中😀', '', 'x\uD800y', 'x\uDC00y', 'x\uFFFDy', 'null'];
    for (const [label, records] of [
      ['UTF-8 column', ids.slice(0, 3).map((delivery_id) => ({ delivery_id }))],
      ['column with lone surrogates (stored as JSON)', ids.map((delivery_id) => ({ delivery_id }))],
    ] as const) {
      const [bytes, strings, legacy] = decodings('deliveries', [...records]).map((b) => keysOf(['delivery_id'], b));
      expect(strings, label).toEqual(bytes);
      expect(legacy, label).toEqual(bytes);
      expect(new Set(bytes).size, label).toBe(records.length);
    }
    const [utf8] = decodings('deliveries', [{ delivery_id: 'é' }]).map((b) => keysOf(['delivery_id'], b));
    expect(utf8).toEqual([Buffer.from('é').toString('hex')]);
  });

  it('composite keys are unambiguous: parts are length-prefixed, a null is not the string "null"', () => {
    const records: SourceRecord[] = [
      { internal_customer_id: 'ab', attribute_name: 'c' },
      { internal_customer_id: 'a', attribute_name: 'bc' },
      { internal_customer_id: 'a\u0000b', attribute_name: 'c' },
      { internal_customer_id: 'a', attribute_name: 'b\u0000c' },
      { internal_customer_id: 'p', attribute_name: 'null' },
      { internal_customer_id: 'p', attribute_name: null },
    ];
    const all = decodings('attributes', records).map((b) => keysOf(['internal_customer_id', 'attribute_name'], b));
    expect(all[1]).toEqual(all[0]);
    expect(all[2]).toEqual(all[0]);
    expect(new Set(all[0]).size).toBe(records.length);
  });

  it('keeps each key once with its latest sequence, across growth of the table', () => {
    const index = new KeyIndex();
    const key = (i: number) => Buffer.from(`key-${i}`);
    const replaced: number[] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 50_000; i++) {
        const b = key(i);
        const k = index.lookup(b, 0, b.length);
        const seq = round * 50_000 + i + 1;
        if (k < 0) index.add(b, 0, b.length, seq);
        else replaced.push(index.replace(k, seq));
      }
    }
    expect(index.size).toBe(50_000);
    expect(replaced).toEqual(Array.from({ length: 100_000 }, (_, j) => j + 1));
    // a key found at an offset of a larger buffer, and one that is a prefix of a stored key
    const inside = Buffer.from('..key-7..');
    expect(index.lookup(inside, 2, 7)).toBeGreaterThanOrEqual(0);
    expect(index.lookup(inside, 2, 6)).toBe(-1);
  });
});
