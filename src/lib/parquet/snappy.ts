// Snappy compression (raw format, as parquet's SNAPPY codec uses it) over Uint8Arrays, written for
// speed: the algorithm of the reference implementation's CompressFragment (64 KiB fragments, a
// 16-bit hash table, the "skip" heuristic that makes incompressible input cheap), with no
// allocation per call beyond a growing output buffer that the caller may reuse.
//
// Format: varint(uncompressed length), then elements: literal (tag 00), copy with 1-byte offset
// (tag 01, length 4..11, offset < 2048), copy with 2-byte offset (tag 10, length 1..64).

export interface Snappy {
  /** An upper bound of the compressed size of `n` bytes (as the reference implementation). */
  snappyMaxLength(n: number): number;
  /**
   * Compresses `input[start, end)` into `out` from `outPos` (which must have room for
   * snappyMaxLength(end - start) bytes); returns the position after the compressed bytes.
   */
  snappyCompressInto(input: Uint8Array, start: number, end: number, out: Uint8Array, outPos: number): number;
}

/**
 * The compressor, made by a self-contained function (no imports, no references outside it): its
 * source text is also evaluated in the compression worker thread (worker.ts).
 */
export function createSnappy(): Snappy {
  const BLOCK_SIZE = 1 << 16;
  const MAX_HASH_BITS = 14;
  const INPUT_MARGIN = 15;
  const MIN_NON_LITERAL_BLOCK = 1 + 1 + INPUT_MARGIN;

  const table = new Uint16Array(1 << MAX_HASH_BITS);

  /** An upper bound of the compressed size of `n` bytes (as the reference implementation). */
  function snappyMaxLength(n: number): number {
    return 32 + n + Math.floor(n / 6);
  }


  /**
   * Compresses `input[start, end)` into `out` from `outPos` (which must have room for
   * snappyMaxLength(end - start) bytes); returns the position after the compressed bytes.
   */
  function snappyCompressInto(input: Uint8Array, start: number, end: number, out: Uint8Array, outPos: number): number {
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
      if (fragmentNextEmit < fragmentEnd) op = emitLiteral(input, fragmentNextEmit, fragmentEnd, out, op);
    }
    return op;
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

  /** Where the last fragment's unemitted bytes start (compressFragment's second result). */
  let fragmentNextEmit = 0;

  /**
   * Compresses one fragment (at most 64 KiB, so that copy offsets fit 16 bits) except for its
   * trailing literal, which the caller emits from fragmentNextEmit (kept out of this function: code
   * after its hot loops that has not run yet makes V8 deoptimize it again and again).
   */
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
      let nextVal = view.getInt32(ip, true);
      for (;;) {
        // look for a 4-byte match, hashing every position at first, then skipping faster and
        // faster through data that does not compress
        let skip = 32;
        let nextIp = ip;
        let candidate = 0;
        let cur = 0;
        let found = false;
        for (;;) {
          ip = nextIp;
          cur = nextVal;
          const hash = Math.imul(cur, 0x1e35a7bd) >>> shift;
          const step = skip >>> 5;
          skip++;
          nextIp = ip + step;
          if (nextIp > ipLimit) break;
          nextVal = view.getInt32(nextIp, true);
          candidate = base + table[hash];
          table[hash] = ip - base;
          if (cur === view.getInt32(candidate, true)) {
            found = true;
            break;
          }
        }
        if (!found) break;

        // literal [nextEmit, ip)
        const litLen = ip - nextEmit;
        const n = litLen - 1;
        if (n < 60) {
          out[op++] = n << 2;
        } else if (n < 0x100) {
          out[op++] = 60 << 2;
          out[op++] = n;
        } else {
          out[op++] = 61 << 2; // n < 0x10000 within a 64 KiB fragment
          out[op++] = n & 0xff;
          out[op++] = n >>> 8;
        }
        if (litLen < 32) {
          for (let k = nextEmit; k < ip; k++) out[op++] = input[k];
        } else {
          out.set(input.subarray(nextEmit, ip), op);
          op += litLen;
        }

        // copies, as long as the position after one starts another match
        let more = true;
        while (more) {
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
          const offset = matchStart - candidate;
          let copyLen = ip - matchStart;
          while (copyLen >= 68) {
            out[op++] = 2 | (63 << 2);
            out[op++] = offset & 0xff;
            out[op++] = offset >>> 8;
            copyLen -= 64;
          }
          if (copyLen > 64) {
            out[op++] = 2 | (59 << 2);
            out[op++] = offset & 0xff;
            out[op++] = offset >>> 8;
            copyLen -= 60;
          }
          if (copyLen < 12 && offset < 2048) {
            out[op++] = 1 | ((copyLen - 4) << 2) | ((offset >>> 8) << 5);
            out[op++] = offset & 0xff;
          } else {
            out[op++] = 2 | ((copyLen - 1) << 2);
            out[op++] = offset & 0xff;
            out[op++] = offset >>> 8;
          }
          nextEmit = ip;
          if (ip >= ipLimit) break;
          table[Math.imul(view.getInt32(ip - 1, true), 0x1e35a7bd) >>> shift] = ip - 1 - base;
          cur = view.getInt32(ip, true);
          const curHash = Math.imul(cur, 0x1e35a7bd) >>> shift;
          candidate = base + table[curHash];
          table[curHash] = ip - base;
          more = cur === view.getInt32(candidate, true);
        }
        if (ip >= ipLimit) break;
        ip++;
        nextVal = view.getInt32(ip, true);
      }
    }
    fragmentNextEmit = nextEmit;
    return op;
  }

  return { snappyMaxLength, snappyCompressInto };
}

export const { snappyMaxLength, snappyCompressInto } = createSnappy();

/** Compresses `input` into a new Uint8Array (convenience for tests and small inputs). */
export function snappyCompress(input: Uint8Array): Uint8Array {
  const out = new Uint8Array(snappyMaxLength(input.length));
  const len = snappyCompressInto(input, 0, input.length, out, 0);
  return out.slice(0, len);
}
