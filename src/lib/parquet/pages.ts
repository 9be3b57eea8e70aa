// Page framing: for each page of a row group, staged uncompressed by encode.ts, its
// PageHeader (thrift compact protocol) followed by its body, compressed per the column chunk codec.
// This is the step that runs in the compression worker (worker.ts) for big row groups, so
// it is made by a self-contained function whose source text is evaluated there too.

import type { Snappy } from './snappy.js';

/** Staged page descriptor: 5 ints per page. */
export const PAGE_FIELDS = 5;
// [start, end, page type, num_values, encoding]

/** Compression of a page body for codecs other than SNAPPY (main thread only). */
export type BodyCompressor = (body: Uint8Array) => Uint8Array;

export interface PageFramer {
  /**
   * Writes header + body of pages[0, count) of `input` into the framer's output buffer (reused
   * from call to call); sizes[2i] = header bytes and sizes[2i + 1] = body bytes of page i.
   * codec: 0 = UNCOMPRESSED, 1 = SNAPPY, 2 = `compress`.
   */
  framePages(
    input: Uint8Array,
    pages: Int32Array,
    count: number,
    codec: number,
    compress: BodyCompressor | null,
    sizes: Int32Array,
  ): { out: Uint8Array; length: number };
}

/** Self-contained (no imports used at run time, no outer references): see above. */
export function createPageFramer(snappy: Snappy): PageFramer {
  const DATA_PAGE = 0;
  const RLE = 3;
  let out = new Uint8Array(1 << 20);

  function ensure(n: number, keep: number): void {
    if (out.length < n) {
      const next = new Uint8Array(Math.max(n, out.length * 2));
      next.set(out.subarray(0, keep));
      out = next;
    }
  }

  function zigzag32(b: Uint8Array, p: number, v: number): number {
    let z = ((v << 1) ^ (v >> 31)) >>> 0;
    while (z >= 0x80) {
      b[p++] = (z & 0x7f) | 0x80;
      z >>>= 7;
    }
    b[p++] = z;
    return p;
  }

  /** PageHeader at h[p]: DATA_PAGE (v1) or DICTIONARY_PAGE; returns the position after it. */
  function header(h: Uint8Array, p: number, pageType: number, size: number, compressed: number, numValues: number, encoding: number): number {
    h[p++] = 0x15; // 1: type (i32)
    p = zigzag32(h, p, pageType);
    h[p++] = 0x15; // 2: uncompressed_page_size
    p = zigzag32(h, p, size);
    h[p++] = 0x15; // 3: compressed_page_size
    p = zigzag32(h, p, compressed);
    if (pageType === DATA_PAGE) {
      h[p++] = 0x2c; // 5: data_page_header (struct)
      h[p++] = 0x15; // 1: num_values
      p = zigzag32(h, p, numValues);
      h[p++] = 0x15; // 2: encoding
      p = zigzag32(h, p, encoding);
      h[p++] = 0x15; // 3: definition_level_encoding
      p = zigzag32(h, p, RLE);
      h[p++] = 0x15; // 4: repetition_level_encoding
      p = zigzag32(h, p, RLE);
      h[p++] = 0; // end data_page_header
    } else {
      h[p++] = 0x4c; // 7: dictionary_page_header (struct)
      h[p++] = 0x15; // 1: num_values
      p = zigzag32(h, p, numValues);
      h[p++] = 0x15; // 2: encoding
      p = zigzag32(h, p, encoding);
      h[p++] = 0; // end dictionary_page_header
    }
    h[p++] = 0; // end PageHeader
    return p;
  }

  const headerBytes = new Uint8Array(64);

  function framePages(
    input: Uint8Array,
    pages: Int32Array,
    count: number,
    codec: number,
    compress: BodyCompressor | null,
    sizes: Int32Array,
  ): { out: Uint8Array; length: number } {
    let pos = 0;
    for (let i = 0; i < count; i++) {
      const start = pages[i * 5];
      const end = pages[i * 5 + 1];
      const pageType = pages[i * 5 + 2];
      const numValues = pages[i * 5 + 3];
      const encoding = pages[i * 5 + 4];
      const size = end - start;
      let headerLen: number;
      let bodyLen: number;
      if (codec === 1) {
        // compress after room for the largest header; the header (whose size depends on the
        // compressed size) goes right before the body
        const room = 40;
        ensure(pos + room + snappy.snappyMaxLength(size), pos);
        const bodyStart = pos + room;
        bodyLen = snappy.snappyCompressInto(input, start, end, out, bodyStart) - bodyStart;
        headerLen = header(headerBytes, 0, pageType, size, bodyLen, numValues, encoding);
        out.copyWithin(pos + headerLen, bodyStart, bodyStart + bodyLen);
        out.set(headerBytes.subarray(0, headerLen), pos);
      } else {
        const body = codec === 0 ? input.subarray(start, end) : compress!(input.subarray(start, end));
        bodyLen = body.length;
        ensure(pos + 40 + bodyLen, pos);
        headerLen = header(out, pos, pageType, size, bodyLen, numValues, encoding) - pos;
        out.set(body, pos + headerLen);
      }
      sizes[i * 2] = headerLen;
      sizes[i * 2 + 1] = bodyLen;
      pos += headerLen + bodyLen;
    }
    return { out, length: pos };
  }

  return { framePages };
}
