// The primary keys of one file's plan (log-producer.ts): each key's canonical bytes in a BytesTable
// (bytes-table.ts, an open-addressing hash table over typed arrays), with the sequence of
// the key's latest version. A Map of key strings made a string and a Map entry per row (for a 250,000-row file,
// most of the plan's time and of the export's garbage); this makes neither, and keeps only the
// file's keys (at most EXPORT_MAX_ROWS_PER_FILE).
//
// Canonical bytes, the same whatever format the segment stored the key in: a string is its UTF-8
// bytes; a string with a lone surrogate (which UTF-8 cannot carry) 0xFE then its UTF-16LE code units;
// null 0xFF; anything else 0xFD then the UTF-8 of String(value). 0xFD–0xFF never occur in UTF-8, so
// no two different keys share bytes. A key of several columns is each part's byte length (u32 LE)
// then its bytes.
import { BytesTable } from './bytes-table.js';
import { LONE_SURROGATE, type SegmentBatch, type Utf8Column, type Values } from '../source/segment.js';

/** A key's bytes: bytes[from, to). */
export interface KeyBytes {
  bytes: Uint8Array;
  from: number;
  to: number;
}

export class KeyIndex {
  private readonly keys = new BytesTable();
  /** Per key: the sequence of its latest version. */
  private seqs = new Float64Array(1024);

  /** Keys held. */
  get size(): number {
    return this.keys.size;
  }

  /** The key number of bytes[from, to), or -1; add() then inserts it at the place found. */
  lookup(bytes: Uint8Array, from: number, to: number): number {
    return this.keys.lookup(bytes, from, to);
  }

  /** Adds the key of the last lookup (which found none) with its latest version `seq`. */
  add(bytes: Uint8Array, from: number, to: number, seq: number): void {
    const k = this.keys.add(bytes, from, to);
    if (k === this.seqs.length) {
      const next = new Float64Array(k * 2);
      next.set(this.seqs);
      this.seqs = next;
    }
    this.seqs[k] = seq;
  }

  /** Sets key k's latest version to `seq`; returns the one it replaces. */
  replace(k: number, seq: number): number {
    const earlier = this.seqs[k];
    this.seqs[k] = seq;
    return earlier;
  }
}

/**
 * Reads the canonical bytes of a record's key from its segment's columns (decoded with `utf8`, or
 * not: segments of earlier versions). `of(batch)` prepares a segment; the returned function gives
 * record i's key, valid until its next call.
 */
export function keyReader(primaryKey: readonly string[]): (batch: SegmentBatch) => (i: number) => KeyBytes {
  let scratch = Buffer.alloc(256);
  const out: KeyBytes = { bytes: scratch, from: 0, to: 0 };
  /** Writes one part's canonical bytes at `at`; returns the position after them. */
  const put = (at: number, column: Values | undefined, utf8: Utf8Column | undefined, i: number): number => {
    if (utf8 !== undefined) {
      if (utf8.nulls[i] === 1) return putByte(at, 0xff);
      const from = utf8.offsets[i];
      const to = utf8.offsets[i + 1];
      ensure(at + to - from);
      scratch.set(utf8.bytes.subarray(from, to), at);
      return at + to - from;
    }
    const v = column?.[i];
    if (v === null || v === undefined) return putByte(at, 0xff);
    if (typeof v === 'string') {
      if (!LONE_SURROGATE.test(v)) {
        ensure(at + v.length * 3);
        return at + scratch.write(v, at, 'utf8');
      }
      ensure(at + 1 + v.length * 2);
      scratch[at] = 0xfe;
      return at + 1 + scratch.write(v, at + 1, 'utf16le');
    }
    const s = String(v);
    ensure(at + 1 + s.length * 3);
    scratch[at] = 0xfd;
    return at + 1 + scratch.write(s, at + 1, 'utf8');
  };
  const putByte = (at: number, byte: number) => {
    ensure(at + 1);
    scratch[at] = byte;
    return at + 1;
  };
  const ensure = (length: number) => {
    if (length <= scratch.length) return;
    const next = Buffer.alloc(Math.max(length, scratch.length * 2));
    next.set(scratch);
    scratch = next;
    out.bytes = scratch;
  };
  if (primaryKey.length === 1) {
    const [name] = primaryKey;
    return (batch) => {
      const utf8 = batch.utf8?.[name];
      const column = batch.columns[name];
      if (utf8 !== undefined) {
        // The stored bytes themselves: no copy.
        const direct: KeyBytes = { bytes: utf8.bytes, from: 0, to: 0 };
        return (i) => {
          if (utf8.nulls[i] === 1) {
            out.to = putByte(0, 0xff);
            return out;
          }
          direct.from = utf8.offsets[i];
          direct.to = utf8.offsets[i + 1];
          return direct;
        };
      }
      return (i) => {
        out.to = put(0, column, undefined, i);
        return out;
      };
    };
  }
  return (batch) => {
    const parts = primaryKey.map((name) => ({ column: batch.columns[name], utf8: batch.utf8?.[name] }));
    return (i) => {
      let at = 0;
      for (const { column, utf8 } of parts) {
        const start = at + 4;
        ensure(start);
        const end = put(start, column, utf8, i);
        scratch.writeUInt32LE(end - start, at);
        at = end;
      }
      out.to = at;
      return out;
    };
  };
}
