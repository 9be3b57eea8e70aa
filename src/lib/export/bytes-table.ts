// A set of byte strings, each numbered in order of first sight, as an open-addressing hash table over
// typed arrays with the bytes in one arena: no JS string and no Map entry per value. An export's plan
// of primary keys (key-index.ts) is built on it.

export class BytesTable {
  /** Byte strings held; they are numbered 0 … size − 1. */
  size = 0;
  private arena = new Uint8Array(1 << 12);
  private used = 0;
  /** Per byte string: its start in the arena (its end is the next one's start, or `used`). */
  private starts = new Int32Array(256);
  private hashes = new Int32Array(256);
  /** Number + 1 of the byte string in each slot, 0 where empty; at most half full. */
  private slots = new Int32Array(512);
  /** The last lookup's hash, and the slot where its bytes are or would go. */
  private hash = 0;
  private slot = 0;

  /** The number of bytes[from, to), or −1 when it is not held (then add() inserts it). */
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

  /** Adds bytes[from, to), which the last lookup() did not find; returns its number. */
  add(bytes: Uint8Array, from: number, to: number): number {
    const k = this.size++;
    if (k === this.starts.length) {
      this.starts = grown(this.starts);
      this.hashes = grown(this.hashes);
    }
    const length = to - from;
    if (this.used + length > this.arena.length) {
      const next = new Uint8Array(Math.max(this.arena.length * 2, this.used + length));
      next.set(this.arena.subarray(0, this.used));
      this.arena = next;
    }
    const arena = this.arena;
    let at = this.used;
    this.starts[k] = at;
    // A loop, not set(subarray()): values are mostly short, and a subarray is an object each.
    if (length > 64) arena.set(bytes.subarray(from, to), at);
    else for (let i = from; i < to; i++) arena[at + i - from] = bytes[i];
    this.used = at + length;
    this.hashes[k] = this.hash;
    this.slots[this.slot] = k + 1;
    if (this.size * 2 > this.slots.length) this.rehash();
    return k;
  }

  private end(k: number): number {
    return k + 1 < this.size ? this.starts[k + 1] : this.used;
  }

  private equals(k: number, bytes: Uint8Array, from: number, to: number): boolean {
    const start = this.starts[k];
    const end = this.end(k);
    if (end - start !== to - from) return false;
    const arena = this.arena;
    for (let i = start, j = from; i < end; i++, j++) if (arena[i] !== bytes[j]) return false;
    return true;
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

function grown(a: Int32Array): Int32Array<ArrayBuffer> {
  const next = new Int32Array(a.length * 2);
  next.set(a);
  return next;
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
