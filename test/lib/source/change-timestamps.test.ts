// SPEC 5.4, the 1 ms rule, as a pure property: a people or attribute change whose timestamp is not
// later than the one exported before it for its key is exported 1 ms after that one. Random changes
// with random (older, equal, later) timestamps, applied the way ingest applies them to a person's
// state, exported in any split into files and merged by the loader's rule, give the source's state.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyAttributeRecord, applyPersonRecord, changeTimestamp, type PersonState } from '../../../src/lib/source/people-state.js';

const empty = (id: string): PersonState => ({ internal_customer_id: id, customer_id: null, email_addr: null, deleted: false, suppressed: false, created_at: null, updated_at: null, attrs: {}, goneSince: null, goneBefore: [], pseq: 0, aseq: 0 });

type Change = { kind: 'person'; id: string; at: number; email: string } | { kind: 'attribute'; id: string; name: string; value: string | null; at: number };
const id = fc.constantFrom('p0', 'p1');
const at = fc.integer({ min: 0, max: 6 });
const change: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ kind: fc.constant('person' as const), id, at, email: fc.constantFrom('a@x', 'b@x', 'c@x') }),
  fc.record({ kind: fc.constant('attribute' as const), id, name: fc.constantFrom('plan', 'city'), value: fc.constantFrom(null, 'one', 'two'), at }),
);

interface Row {
  key: string;
  value: string | null;
  ts: number;
}

describe('the 1 ms rule (changeTimestamp)', () => {
  it('is the change\'s own timestamp when later than the previous one, else 1 ms after it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 45 }), fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { nil: null }), (own, previous) => {
        const ts = changeTimestamp(own, previous);
        if (previous === null) return ts === own;
        return ts > previous && (own > previous ? ts === own : ts === previous + 1);
      }),
      { numRuns: 2000 },
    );
  });

  it('random interleavings, any split into files, merged by latest timestamp = the source state', () => {
    fc.assert(
      fc.property(fc.array(change, { maxLength: 40 }), fc.array(fc.nat(), { maxLength: 6 }), (changes, cuts) => {
        const states = new Map<string, PersonState>();
        const state = (k: string) => states.get(k) ?? states.set(k, empty(k)).get(k)!;
        const exported: Row[] = []; // in export (seq) order
        const source = new Map<string, string | null>(); // last write per key, in ingest order
        for (const c of changes) {
          const s = state(c.id);
          if (c.kind === 'person') {
            const ts = changeTimestamp(c.at, s.updated_at);
            applyPersonRecord(s, 0, { customer_id: 'c', internal_customer_id: c.id, email_addr: c.email, created_at: 0, updated_at: ts });
            exported.push({ key: `person|${c.id}`, value: c.email, ts });
            source.set(`person|${c.id}`, c.email);
          } else {
            if ((s.attrs[c.name]?.[0] ?? null) === c.value) continue; // no change
            const ts = changeTimestamp(c.at, s.attrs[c.name]?.[1]);
            applyAttributeRecord(s, 0, { internal_customer_id: c.id, attribute_name: c.name, attribute_value: c.value, timestamp: ts });
            exported.push({ key: `attr|${c.id}|${c.name}`, value: c.value, ts });
            source.set(`attr|${c.id}|${c.name}`, c.value);
          }
        }
        // Files: the export order cut anywhere; a loader keeps per key the row with the latest timestamp.
        const bounds = [...new Set(cuts.map((n) => n % (exported.length + 1)))].sort((a, b) => a - b);
        const files = [...bounds, exported.length].map((end, i, all) => exported.slice(i === 0 ? 0 : all[i - 1], end));
        const merged = new Map<string, Row>();
        for (const file of files) {
          for (const row of file) {
            const held = merged.get(row.key);
            expect(held === undefined || row.ts !== held.ts).toBe(true); // never a tie
            if (!held || row.ts > held.ts) merged.set(row.key, row);
          }
        }
        const live = (m: Map<string, string | null>) => [...m].filter(([, v]) => v !== null).sort();
        expect(live(new Map([...merged].map(([k, r]) => [k, r.value])))).toEqual(live(source));
        // The state keeps what was exported (removals too), so a snapshot agrees with the log.
        for (const [k, row] of merged) {
          const [kind, pid, name] = k.split('|');
          const s = states.get(pid)!;
          expect(kind === 'person' ? s.updated_at : s.attrs[name]?.[1]).toBe(row.ts);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
