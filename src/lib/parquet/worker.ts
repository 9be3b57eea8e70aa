// The compression worker: frames (header + SNAPPY body) the staged pages of big row groups on a
// worker thread, so that the main thread meanwhile buffers the next row group. One worker per
// process, shared by every writer, started on first use and not keeping the process alive when
// idle; requests are answered in order.
//
// Its code is the source text of the self-contained factories createSnappy() and
// createPageFramer(), evaluated in the worker: that works the same from compiled JavaScript, under
// tsx and under vitest (a worker file would be a .ts file in the last two, which plain Node
// cannot load).

import { Worker } from 'node:worker_threads';
import { createPageFramer } from './pages.js';
import { createSnappy } from './snappy.js';

// __name: the helper that esbuild (tsx, vitest) calls to keep function names
const SOURCE = `'use strict';
const __name = (target) => target;
const { parentPort } = require('node:worker_threads');
const snappy = (${createSnappy.toString()})();
const framer = (${createPageFramer.toString()})(snappy);
// prime the compressor (type feedback, compilation) while the first row group is being buffered
{
  const sample = new Uint8Array(1 << 16);
  for (let i = 0; i < sample.length; i++) sample[i] = (i * 2654435761) >>> 27 & 15 ? 48 + (i % 10) : i & 255;
  framer.framePages(sample, new Int32Array([0, sample.length, 0, 1, 0]), 1, 1, null, new Int32Array(2));
}
parentPort.on('message', (m) => {
  try {
    const sizes = new Int32Array(2 * m.count);
    const framed = framer.framePages(new Uint8Array(m.input, 0, m.length), m.pages, m.count, 1, null, sizes);
    const bytes = framed.out.slice(0, framed.length);
    parentPort.postMessage({ id: m.id, bytes, sizes }, [bytes.buffer, sizes.buffer]);
  } catch (err) {
    parentPort.postMessage({ id: m.id, error: String((err && err.stack) || err) });
  }
});
`;

export interface Framed {
  /** Header + body of every page, in order. */
  bytes: Uint8Array;
  /** sizes[2i] = header bytes, sizes[2i + 1] = body bytes of page i. */
  sizes: Int32Array;
}

interface Pending {
  resolve(framed: Framed): void;
  reject(err: Error): void;
}

class FramingWorker {
  /** False once a worker failed: the process then frames on the main thread. */
  usable = true;
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  /** Starts the worker ahead of its first use (it then does not keep the process alive). */
  warm(): void {
    if (!this.usable) return;
    try {
      this.start();
    } catch {
      // framed on the main thread then
    }
  }

  /**
   * Frames pages[0, count) of input[0, length) with SNAPPY bodies. `input`'s memory is transferred
   * to the worker (the caller must not use it afterwards).
   */
  frameSnappy(input: Uint8Array, length: number, pages: Int32Array, count: number): Promise<Framed> {
    const worker = this.start();
    const id = this.nextId++;
    let buffer = input.buffer as ArrayBuffer;
    if (input.byteOffset !== 0 || !(buffer instanceof ArrayBuffer)) {
      buffer = input.slice(0, length).buffer as ArrayBuffer;
    }
    return new Promise<Framed>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      if (this.pending.size === 1) worker.ref();
      worker.postMessage({ id, input: buffer, length, pages, count }, [buffer]);
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    let worker: Worker;
    try {
      worker = new Worker(SOURCE, { eval: true });
    } catch (err) {
      this.usable = false;
      throw err;
    }
    worker.on('message', (m: { id: number; bytes?: Uint8Array; sizes?: Int32Array; error?: string }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) worker.unref();
      if (m.error !== undefined) p.reject(new Error(`parquet: compression worker: ${m.error}`));
      else p.resolve({ bytes: m.bytes!, sizes: m.sizes! });
    });
    const failAll = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      if (this.pending.size > 0) this.usable = false;
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => failAll(err instanceof Error ? err : new Error(String(err))));
    worker.on('exit', (code) => failAll(new Error(`parquet: compression worker exited with code ${code}`)));
    // After the listeners: adding a 'message' listener refs the worker's port again (Node 20), and an
    // idle worker must not keep the process alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

export const framingWorker = new FramingWorker();
