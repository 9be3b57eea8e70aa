// `npm run bench`: one table of figures, also written as JSON under bench/results/.
//   npm run bench                 full sizes (a few minutes)
//   npm run bench -- --quick      small sizes (about a minute)
//   npm run bench -- --only=fanout,ingest   a subset (encode, segment, ingest, export, history, memory, fanout)
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startAzurite } from '../src/local/azurite.js';
import { benchIngest } from './ingest.js';
import { benchInitialSync, DEPLOYED_NODE_OPTIONS, INSTANCE_SENDS } from './pipeline.js';
import { benchFanOutFigures } from './fanout.js';
import { benchEncode } from './encode.js';
import { benchExportAfterHistory } from './history.js';
import { benchConcurrentMemory, hostConcurrency } from './memory-concurrent.js';
import { benchSegment } from './segment.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',');
const want = (name: string) => !only || only.includes(name);

const sizes = quick
  ? { encode: 200_000, segment: 100_000, ingest: 20_000, export: 100_000, history: 200_000, memorySmall: 50_000, memoryLarge: 500_000, concurrentDeliveries: 100_000, concurrentContent: 40, fanout: 2_000 }
  : { encode: 1_000_000, segment: 500_000, ingest: 100_000, export: 200_000, history: 2_000_000, memorySmall: 200_000, memoryLarge: 2_000_000, concurrentDeliveries: 500_000, concurrentContent: 200, fanout: 10_000 };

/** The deployed heap flag (256 MiB) plus a margin for code, buffers outside the V8 heap and the compressor thread; the instance has 2,048 MB for the host and the worker. */
const CONCURRENT_RSS_TARGET_MIB = 768;

interface Row {
  figure: string;
  value: string;
  note?: string;
}

async function main(): Promise<void> {
  const results: Record<string, unknown> = { startedAt: new Date().toISOString(), quick, sizes, machine: { cpus: os.cpus().length, cpu: os.cpus()[0]?.model, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, platform: `${os.platform()} ${os.arch()}` } };
  const table: Row[] = [];
  const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

  // The export pipeline's yardstick: the encoder alone on as many rows as the pipeline's sync, cold
  // (first, before any other encode in this process: a writer's first rows run before the JIT has
  // compiled it, as in the export's new child process) and warm (the same rows written once before,
  // untimed, as the warm export ran a sync before).
  const sameRows = want('encode') && want('export');
  let encodeCold: number | undefined;
  let encodeWarm: number | undefined;
  if (sameRows) {
    const r = await benchEncode(sizes.export);
    results.encodeAtExportSize = r;
    encodeCold = r.oursRowsPerSecond;
    table.push({ figure: `encode ${fmt(sizes.export)} deliveries rows (the export's size), ours, cold`, value: `${fmt(r.oursRowsPerSecond)} rows/s` });
  }
  let encodeRowsPerSecond: number | undefined;
  if (want('encode')) {
    const r = await benchEncode(sizes.encode);
    results.encode = r;
    encodeRowsPerSecond = r.oursRowsPerSecond;
    table.push({ figure: `encode ${fmt(sizes.encode)} deliveries rows: ours`, value: `${fmt(r.oursRowsPerSecond)} rows/s` });
    table.push({ figure: 'encode, DuckDB COPY TO parquet (same rows, same run)', value: `${fmt(r.duckdbRowsPerSecond)} rows/s` });
    table.push({ figure: 'encode ratio ours / DuckDB', value: `${fmt(r.ratio, 2)}×`, note: 'target ≥ 0.30×' });
  }
  if (sameRows) {
    const r = await benchEncode(sizes.export, { warm: true });
    results.encodeAtExportSizeWarm = r;
    encodeWarm = r.oursRowsPerSecond;
    table.push({ figure: `encode ${fmt(sizes.export)} deliveries rows, ours, warm (the same rows written once before)`, value: `${fmt(r.oursRowsPerSecond)} rows/s` });
  }

  if (want('segment')) {
    const r = benchSegment(sizes.segment);
    results.segmentFormat = r;
    const d = r.decodeRecordsPerSecond;
    table.push({ figure: `source segment decode, ${fmt(r.records)} deliveries records: ours (binary columns)`, value: `${fmt(d.ours)} records/s`, note: `${fmt(r.bytesPerRecord.ours)} bytes/record; encode ${fmt(r.encodeRecordsPerSecond.ours)} records/s` });
    table.push({ figure: 'source segment decode: JSON records (earlier versions) / JSON columns', value: `${fmt(d.jsonRecords)} / ${fmt(d.jsonColumns)} records/s`, note: `ours ${fmt(r.decodeRatio, 1)}× JSON records` });
  }

  if (want('ingest')) {
    const [r, p, large] = await benchIngest([
      { records: sizes.ingest, fileType: 'deliveries' },
      // As many people as deliveries: a writer writes its pending state every ~16 requests of 1,000
      // people (PENDING_MAX_RECORDS), so the window must hold several of those writes, as any long run does.
      { records: sizes.ingest, fileType: 'people' },
      // The same into a workspace that already holds 3× as many people (a long-lived or large one): its
      // pages no longer all fit the writer's memory in the full run (64 MiB, ~350,000 people).
      { records: sizes.ingest, fileType: 'people', history: 3 * sizes.ingest },
    ]);
    results.ingest = r;
    table.push({ figure: `ingest ${fmt(sizes.ingest)} deliveries, 1 client, batches of 1,000 (HTTP)`, value: `${fmt(r.recordsPerSecond)} records/s`, note: 'target ≥ 20,000' });
    results.ingestPeople = p;
    table.push({ figure: `ingest ${fmt(p.records)} people with ${p.attributesPerPerson} attributes each, 1 client, batches of 1,000 (HTTP)`, value: `${fmt(p.recordsPerSecond)} people/s`, note: 'target ≥ 15,000' });
    results.ingestPeopleLarge = { ...large, ratio: large.recordsPerSecond / p.recordsPerSecond };
    table.push({ figure: `the same into a workspace of ${fmt(large.history!)} people (people ${fmt(large.history!)}–${fmt(large.history! + large.records)})`, value: `${fmt(large.recordsPerSecond)} people/s`, note: `${fmt(large.recordsPerSecond / p.recordsPerSecond, 2)}× the empty workspace` });
  }

  if (want('export') || want('history') || want('memory') || want('fanout')) {
    const azurite = await startAzurite();
    try {
      if (want('export')) {
        const r = await benchInitialSync(azurite.connectionString, 1, sizes.export);
        results.export = r;
        table.push({ figure: `export pipeline, initial sync of ${fmt(r.rows)} deliveries (store → parquet → blob), a new worker process`, value: `${fmt(r.rowsPerSecond)} rows/s`, note: `${r.files} files, ${fmt(r.bytes / 2 ** 20, 1)} MiB` });
        // The same sync in a worker that has exported before: an untimed sync of as many rows first (as
        // the warm encode wrote the same rows once before).
        const warm = await benchInitialSync(azurite.connectionString, 7, sizes.export, DEPLOYED_NODE_OPTIONS, sizes.export);
        results.exportWarm = warm;
        table.push({ figure: 'the same sync in a worker that has exported before', value: `${fmt(warm.rowsPerSecond)} rows/s` });
        const ratio = (a: number, b: number | undefined) => (b ? a / b : undefined);
        results.exportRatio = { sameRowsCold: ratio(r.rowsPerSecond, encodeCold), sameRowsWarm: ratio(warm.rowsPerSecond, encodeWarm), encodeSize: ratio(r.rowsPerSecond, encodeRowsPerSecond) };
        if (encodeCold) table.push({ figure: 'export pipeline / encode-only, the same rows, both cold', value: `${fmt(r.rowsPerSecond / encodeCold, 2)}×`, note: 'target ≥ 0.30×' });
        if (encodeWarm) table.push({ figure: 'export pipeline / encode-only, the same rows, both warm', value: `${fmt(warm.rowsPerSecond / encodeWarm, 2)}×`, note: 'target ≥ 0.30×' });
        if (encodeRowsPerSecond) table.push({ figure: `export pipeline (new process) / encode-only of ${fmt(sizes.encode)} rows`, value: `${fmt(r.rowsPerSecond / encodeRowsPerSecond, 2)}×`, note: 'the figure before' });
      }
      if (want('history')) {
        const r = await benchExportAfterHistory(azurite.connectionString, 11, sizes.history);
        results.exportAfterHistory = r;
        table.push({ figure: `changeset of ${fmt(r.changesetRows)} rows after ${fmt(r.historyRows)} rows of history (${fmt(r.historySegments)} segments) / with none`, value: `${fmt(r.ratio, 2)}×`, note: `${fmt(r.withHistorySeconds * 1000)} / ${fmt(r.withoutHistorySeconds * 1000)} ms, median of ${r.rounds}; target ≤ 1.5×` });
        table.push({ figure: `storage requests of that changeset export (one file)`, value: fmt(r.requestsPerChangeset), note: 'before this figure: 33' });
      }
      if (want('memory')) {
        // With the deployed worker's V8 old-space cap (DEPLOYED_NODE_OPTIONS), and with Node's default
        // (about 4 GiB here): the heap after a full GC stays flat (~26 MiB), so the difference is V8's lazy GC.
        const small = await benchInitialSync(azurite.connectionString, 2, sizes.memorySmall);
        const large = await benchInitialSync(azurite.connectionString, 3, sizes.memoryLarge);
        const smallDefault = await benchInitialSync(azurite.connectionString, 4, sizes.memorySmall, []);
        const largeDefault = await benchInitialSync(azurite.connectionString, 5, sizes.memoryLarge, []);
        results.memory = { nodeOptions: DEPLOYED_NODE_OPTIONS, small, large, ratio: large.peakRssMiB / small.peakRssMiB, defaultV8: { small: smallDefault, large: largeDefault, ratio: largeDefault.peakRssMiB / smallDefault.peakRssMiB } };
        const opts = DEPLOYED_NODE_OPTIONS.join(' ');
        table.push({ figure: `peak RSS, initial sync of ${fmt(small.rows)} rows (${opts})`, value: `${fmt(small.peakRssMiB)} MiB`, note: `${fmt(small.rowsPerSecond)} rows/s` });
        table.push({ figure: `peak RSS, initial sync of ${fmt(large.rows)} rows (${opts})`, value: `${fmt(large.peakRssMiB)} MiB`, note: `${fmt(large.rowsPerSecond)} rows/s; ${large.files} files` });
        table.push({ figure: 'peak RSS large / small', value: `${fmt(large.peakRssMiB / small.peakRssMiB, 2)}×`, note: 'target ≤ 1.20×, < 300 MiB' });
        if (encodeRowsPerSecond) {
          table.push({ figure: `export pipeline, that ${fmt(large.rows)}-row sync / encode-only of ${fmt(sizes.encode)} rows`, value: `${fmt(large.rowsPerSecond / encodeRowsPerSecond, 2)}×` });
          results.exportRatio = { ...(results.exportRatio as object | undefined), largeSync: large.rowsPerSecond / encodeRowsPerSecond };
        }
        table.push({ figure: `peak RSS ${fmt(smallDefault.rows)} / ${fmt(largeDefault.rows)} rows, Node's default heap limit`, value: `${fmt(smallDefault.peakRssMiB)} / ${fmt(largeDefault.peakRssMiB)} MiB`, note: `${fmt(largeDefault.peakRssMiB / smallDefault.peakRssMiB, 2)}×` });
      }
      if (want('memory')) {
        // One worker runs host.json's batchSize + newBatchThreshold exports at once, all under the one heap flag.
        const n = hostConcurrency();
        const deliveries = await benchConcurrentMemory(azurite.connectionString, 21, 'deliveries', n, sizes.concurrentDeliveries);
        const content = await benchConcurrentMemory(azurite.connectionString, 31, 'content', n, sizes.concurrentContent);
        results.memoryConcurrent = { nodeOptions: DEPLOYED_NODE_OPTIONS, concurrency: n, deliveries, content, targetMiB: CONCURRENT_RSS_TARGET_MIB };
        const note = (r: { peakRssMiB: number; seconds: number }) => `${fmt(r.seconds, 1)} s; target ≤ ${CONCURRENT_RSS_TARGET_MIB} MiB`;
        table.push({ figure: `peak RSS, ${n} concurrent initial syncs of ${fmt(deliveries.rowsEach)} deliveries in one worker`, value: `${fmt(deliveries.peakRssMiB)} MiB`, note: note(deliveries) });
        table.push({ figure: `peak RSS, ${n} concurrent initial syncs of ${fmt(content.rowsEach)} contents × 400 KiB bodies in one worker`, value: `${fmt(content.peakRssMiB)} MiB`, note: note(content) });
      }
      if (want('fanout')) {
        const fan = await benchFanOutFigures(sizes.fanout);
        const { fanoutSparse, fanoutDense, fanoutDenseWhole, fanoutSparse100k, fanoutBefore, fanoutFloor, fanoutSender } = fan;
        const { sdk: senderSdk, ours: senderOurs } = fanoutSender;
        Object.assign(results, fan);
        const note = (r: typeof fanoutSparse) => `${fmt(r.messages)} messages; timer ${fmt(r.tickSeconds, 2)} s, ${fmt(r.invocations)} fan-out invocations, slowest ${fmt(r.maxShardSeconds, 2)} s`;
        table.push({ figure: `fan-out, one tick, ${fmt(sizes.fanout)} workspaces, 1% with changes`, value: `${fmt(fanoutSparse.seconds, 2)} s`, note: `${note(fanoutSparse)}; target ≤ 5 s for 10,000` });
        table.push({ figure: `fan-out, one tick, ${fmt(sizes.fanout)} workspaces, all with changes`, value: `${fmt(fanoutDense.seconds, 1)} s`, note: `${note(fanoutDense)}; ${fmt(fanoutDense.messages / fanoutDense.expandSeconds)} messages/s; target ≤ 60 s for 10,000` });
        table.push({ figure: `the queue's floor: ${fmt(fanoutFloor.messages)} bare sends, ${INSTANCE_SENDS} in flight (same run)`, value: `${fmt(fanoutFloor.seconds, 1)} s`, note: `${fmt(fanoutFloor.messagesPerSecond)} messages/s; the dense tick took ${fmt(fan.fanoutDenseOverFloor, 2)}× this` });
        table.push({ figure: `sender CPU per message, ours / QueueClient.sendMessage (${fmt(senderOurs.messages)} each)`, value: `${fmt(senderOurs.cpuMsPerMessage, 3)} / ${fmt(senderSdk.cpuMsPerMessage, 3)} ms`, note: `${fmt(fanoutSender.cpuRatio, 2)}×; wall ${fmt(senderOurs.seconds, 1)} / ${fmt(senderSdk.seconds, 1)} s` });
        table.push({ figure: 'same, before: whole shards, a lease query per workspace (same markers, same run)', value: `${fmt(fanoutDenseWhole.seconds, 1)} s`, note: `${note(fanoutDenseWhole)}; ${fmt(fanoutDenseWhole.messages / fanoutDenseWhole.expandSeconds)} messages/s` });
        table.push({ figure: 'fan-out, one tick, 100,000 workspaces, 1% with changes', value: `${fmt(fanoutSparse100k.seconds, 2)} s`, note: note(fanoutSparse100k) });
        table.push({ figure: `before markers: every pair of ${fmt(sizes.fanout)} workspaces in one invocation (now the sweep's way)`, value: `${fmt(fanoutBefore.seconds, 1)} s`, note: `${fmt(fanoutBefore.messages)} messages, same run` });
      }
    } finally {
      await azurite.stop();
    }
  }

  const w = Math.max(...table.map((r) => r.figure.length));
  const v = Math.max(...table.map((r) => r.value.length));
  console.log(`\n${'figure'.padEnd(w)} | ${'value'.padEnd(v)} | note`);
  console.log(`${'-'.repeat(w)}-+-${'-'.repeat(v)}-+-----`);
  for (const r of table) console.log(`${r.figure.padEnd(w)} | ${r.value.padEnd(v)} | ${r.note ?? ''}`);
  const dir = path.join(process.cwd(), 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${quick ? 'quick' : 'full'}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ ...results, table }, null, 2) + '\n');
  writeFileSync(path.join(dir, `latest-${quick ? 'quick' : 'full'}.json`), JSON.stringify({ ...results, table }, null, 2) + '\n');
  console.log(`\nwritten: ${path.relative(process.cwd(), file)}`);
}

// Exit when done: the storage clients' keep-alive sockets and the compressor's port would hold the loop open.
main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
