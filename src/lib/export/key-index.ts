// The primary keys of one file's plan (log-producer.ts): each key's canonical bytes in one arena,
// hashed into an open-addressing table of typed arrays, with the sequence of the key's latest
// version. A Map of key strings made a string and a Map entry per row (for a 250,000-row file,
// most of the plan's time and of the export's garbage); this makes neither, and keeps only the
// file's keys (at most EXPORT_MAX_ROWS_PER_FILE).
//
// Canonical bytes, the same whatever format the segment stored the key in: a string is its UTF-8
// bytes; a string with a lone surrogate (which UTF-8 cannot carry) 0xFE then its UTF-16LE code units;
// null 0xFF; anything else 0xFD then the UTF-8 of String(value). 0xFD–0xFF never occur in UTF-8, so
// no two different keys share bytes. A key of several columns is each part's byte length (u32 LE)
// then its bytes.
import { LONE_SURROGATE, type SegmentBatch, type Utf8Column, type Values } from '../source/segment.js';

/** A key's bytes: bytes[from, to). */
export interface KeyBytes {
  bytes: Uint8Array;
  from: number;
  to: number;
}

export class KeyIndex {
  /** Keys held. */
  size = 0;
  private arena = new Uint8Array(1 << 16);
  private used = 0;
  /** Per key: its bytes' start in the arena (its end is the next key's start, or `used`). */
  private starts = new Int32Array(1024);
  private hashes = new Int32Array(1024);
  private seqs = new Float64Array(1024);
  /** key number + 1, 0 where empty; at most half full. */
  private slots = new Int32Array(2048);
  /** The last lookup's hash and the slot where its key is or would go. */
  private hash = 0;
  private slot = 0;

  /** The key number of bytes[from, to), or -1; add() then inserts it at the place found. */
  lookup(bytes: Uint8Array, from: number, to: number): number {
    const h = hashBytes(bytes, from, to);
    const slots = this.slots;
    const mask = slots.length - 1;
    let slot = h & mask;
    for (;;) {
      const k = slots[slot] - 1;
      if (k < 0) break;
      if (this.hashes[k] === h && this.equals(k, bytes, from, to)) return k;
      slot = (slot + 1) & mask;
    }
    this.hash = h;
    this.slot = slot;
    return -1;
  }

  /** Adds the key of the last lookup (which found none) with its latest version `seq`. */
  add(bytes: Uint8Array, from: number, to: number, seq: number): void {
    const k = this.size++;
    if (k === this.starts.length) this.growKeys();
    const length = to - from;
    if (this.used + length > this.arena.length) {
      const next = new Uint8Array(Math.max(this.arena.length * 2, this.used + length));
      next.set(this.arena.subarray(0, this.used));
      this.arena = next;
    }
    const arena = this.arena;
    let at = this.used;
    this.starts[k] = at;
    // A loop, not set(subarray()): keys are short, and a subarray is an object per key.
    for (let i = from; i < to; i++) arena[at++] = bytes[i];
    this.used = at;
    this.hashes[k] = this.hash;
    this.seqs[k] = seq;
    this.slots[this.slot] = k + 1;
    if (this.size * 2 > this.slots.length) this.rehash();
  }

  /** Sets key k's latest version to `seq`; returns the one it replaces. */
  replace(k: number, seq: number): number {
    const earlier = this.seqs[k];
    this.seqs[k] = seq;
    return earlier;
  }

  private equals(k: number, bytes: Uint8Array, from: number, to: number): boolean {
    const start = this.starts[k];
    const end = k + 1 < this.size ? this.starts[k + 1] : this.used;
    if (end - start !== to - from) return false;
    const arena = this.arena;
    for (let i = start, j = from; i < end; i++, j++) if (arena[i] !== bytes[j]) return false;
    return true;
  }

  private growKeys(): void {
    const n = this.starts.length * 2;
    const grow = <T extends Int32Array | Float64Array>(a: T, b: T): T => (b.set(a), b);
    this.starts = grow(this.starts, new Int32Array(n));
    this.hashes = grow(this.hashes, new Int32Array(n));
    this.seqs = grow(this.seqs, new Float64Array(n));
  }

  private rehash(): void {
    const slots = new Int32Array(this.slots.length * 2);
    const mask = slots.length - 1;
    for (let k = 0; k < this.size; k++) {
      let slot = this.hashes[k] & mask;
      while (slots[slot] !== 0) slot = (slot + 1) & mask;
      slots[slot] = k + 1;
    }
    this.slots = slots;
  }
}

/** FNV-1a over the bytes, then murmur3's finalizer (the table uses the low bits). */
function hashBytes(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
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
