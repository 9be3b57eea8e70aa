// Snappy compression (raw format, as parquet's SNAPPY codec uses it) over Uint8Arrays, written for
// speed: the algorithm of the reference implementation's CompressFragment (64 KiB fragments, a
// 16-bit hash table, the "skip" heuristic that makes incompressible input cheap), with no
// allocation per call beyond a growing output buffer that the caller may reuse.
//
// Format: varint(uncompressed length), then elements: literal (tag 00), copy with 1-byte offset
// (tag 01, length 4..11, offset < 2048), copy with 2-byte offset (tag 10, length 1..64).

const BLOCK_SIZE = 1 << 16;
const MAX_HASH_BITS = 14;
const INPUT_MARGIN = 15;
const MIN_NON_LITERAL_BLOCK = 1 + 1 + INPUT_MARGIN;

const table = new Uint16Array(1 << MAX_HASH_BITS);

/** An upper bound of the compressed size of `n` bytes (as the reference implementation). */
export function snappyMaxLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}


/**
 * Compresses `input[start, end)` into `out` from `outPos` (which must have room for
 * snappyMaxLength(end - start) bytes); returns the position after the compressed bytes.
 */
export function snappyCompressInto(input: Uint8Array, start: number, end: number, out: Uint8Array, outPos: number): number {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  let op = outPos;
  // preamble: uncompressed length, varint
  let n = end - start;
  while (n >= 0x80) {
    out[op++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[op++] = n;
  for (let pos = start; pos < end; pos += BLOCK_SIZE) {
    const fragmentEnd = Math.min(pos + BLOCK_SIZE, end);
    op = compressFragment(view, input, pos, fragmentEnd, out, op);
  }
  return op;
}

/** Compresses `input` into a new Uint8Array (convenience for tests and small inputs). */
export function snappyCompress(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(snappyMaxLength(input.length));
  const len = snappyCompressInto(input, 0, input.length, out, 0);
  return out.slice(0, len);
}

function emitLiteral(input: Uint8Array, from: number, to: number, out: Uint8Array, op: number): number {
  const len = to - from;
  const n = len - 1;
  if (n < 60) {
    out[op++] = n << 2;
  } else if (n < 0x100) {
    out[op++] = 60 << 2;
    out[op++] = n;
  } else if (n < 0x10000) {
    out[op++] = 61 << 2;
    out[op++] = n & 0xff;
    out[op++] = n >>> 8;
  } else if (n < 0x1000000) {
    out[op++] = 62 << 2;
    out[op++] = n & 0xff;
    out[op++] = (n >>> 8) & 0xff;
    out[op++] = n >>> 16;
  } else {
    out[op++] = 63 << 2;
    out[op++] = n & 0xff;
    out[op++] = (n >>> 8) & 0xff;
    out[op++] = (n >>> 16) & 0xff;
    out[op++] = n >>> 24;
  }
  if (len < 32) {
    for (let i = from; i < to; i++) out[op++] = input[i];
  } else {
    out.set(input.subarray(from, to), op);
    op += len;
  }
  return op;
}

function emitCopyAtMost64(offset: number, len: number, out: Uint8Array, op: number): number {
  if (len < 12 && offset < 2048) {
    out[op++] = 1 | ((len - 4) << 2) | ((offset >>> 8) << 5);
    out[op++] = offset & 0xff;
  } else {
    out[op++] = 2 | ((len - 1) << 2);
    out[op++] = offset & 0xff;
    out[op++] = offset >>> 8;
  }
  return op;
}

function emitCopy(offset: number, len: number, out: Uint8Array, op: number): number {
  while (len >= 68) {
    op = emitCopyAtMost64(offset, 64, out, op);
    len -= 64;
  }
  if (len > 64) {
    op = emitCopyAtMost64(offset, 60, out, op);
    len -= 60;
  }
  return emitCopyAtMost64(offset, len, out, op);
}

function compressFragment(view: DataView, input: Uint8Array, start: number, end: number, out: Uint8Array, op: number): number {
  const len = end - start;
  let nextEmit = start;
  if (len >= MIN_NON_LITERAL_BLOCK) {
    let bits = 8;
    while (1 << bits < len && bits < MAX_HASH_BITS) bits++;
    const shift = 32 - bits;
    table.fill(0, 0, 1 << bits);
    const base = start;
    const ipLimit = end - INPUT_MARGIN;
    let ip = start + 1;
    let nextHash = Math.imul(view.getInt32(ip, true), 0x1e35a7bd) >>> shift;
    outer: for (;;) {
      let skip = 32;
      let nextIp = ip;
      let candidate: number;
      let cur: number;
      do {
        ip = nextIp;
        const hash = nextHash;
        const step = skip >>> 5;
        skip++;
        nextIp = ip + step;
        if (nextIp > ipLimit) break outer;
        cur = view.getInt32(ip, true);
        nextHash = Math.imul(view.getInt32(nextIp, true), 0x1e35a7bd) >>> shift;
        candidate = base + table[hash];
        table[hash] = ip - base;
      } while (cur !== view.getInt32(candidate, true));

      op = emitLiteral(input, nextEmit, ip, out, op);

      for (;;) {
        // extend the match
        const matchStart = ip;
        let a = candidate + 4;
        let b = ip + 4;
        while (b + 4 <= end && view.getInt32(a, true) === view.getInt32(b, true)) {
          a += 4;
          b += 4;
        }
        while (b < end && input[a] === input[b]) {
          a++;
          b++;
        }
        ip = b;
        op = emitCopy(matchStart - candidate, ip - matchStart, out, op);
        nextEmit = ip;
        if (ip >= ipLimit) break outer;
        table[Math.imul(view.getInt32(ip - 1, true), 0x1e35a7bd) >>> shift] = ip - 1 - base;
        const curHash = Math.imul((cur = view.getInt32(ip, true)), 0x1e35a7bd) >>> shift;
        candidate = base + table[curHash];
        table[curHash] = ip - base;
        if (cur !== view.getInt32(candidate, true)) break;
      }
      ip++;
      nextHash = Math.imul(view.getInt32(ip, true), 0x1e35a7bd) >>> shift;
    }
  }
  if (nextEmit < end) op = emitLiteral(input, nextEmit, end, out, op);
  return op;
}
