// The source segment format (src/lib/source/segment.ts) against the alternatives, on the same
// deliveries records, in one run: decode (what every export pays per row read) and encode (what
// ingest pays). The format is ours, written by hand; this is the measurement that justifies it.
//   JSON records: the format of earlier versions (an array of objects)
//   JSON columns: one array per column
//   ours:         binary columns (float64, bytes, strings as lengths + one UTF-8 run per column)
import { fileURLToPath } from 'node:url';
import { decodeSegment, encodeSegment, type SourceRecord } from '../src/lib/source/segment.js';
import { deliveryRow } from './pipeline.js';

export interface SegmentBenchResult {
  records: number;
  bytesPerRecord: { jsonRecords: number; jsonColumns: number; ours: number };
  decodeRecordsPerSecond: { jsonRecords: number; jsonColumns: number; ours: number };
  encodeRecordsPerSecond: { jsonRecords: number; ours: number };
  /** ours / JSON records, decode. */
  decodeRatio: number;
}

export function benchSegment(records: number, segment = 5000): SegmentBenchResult {
  // Records as ingest hands them over: without their null values.
  const batch: SourceRecord[] = Array.from({ length: segment }, (_, i) => {
    const record: SourceRecord = {};
    for (const [k, v] of Object.entries(deliveryRow(i))) if (v !== null) record[k] = v;
    return record;
  });
  const names = [...new Set(batch.flatMap((r) => Object.keys(r)))];
  const jsonRecords = Buffer.from(JSON.stringify(batch));
  const jsonColumns = Buffer.from(JSON.stringify(Object.fromEntries(names.map((n) => [n, batch.map((r) => r[n] ?? null)]))));
  const ours = encodeSegment('deliveries', batch);
  const rounds = Math.max(1, Math.round(records / segment));
  const time = (work: () => unknown) => {
    work(); // warm
    const t0 = performance.now();
    for (let i = 0; i < rounds; i++) work();
    return (rounds * segment) / ((performance.now() - t0) / 1000);
  };
  const decode = {
    jsonRecords: time(() => JSON.parse(jsonRecords.toString('utf8'))),
    jsonColumns: time(() => JSON.parse(jsonColumns.toString('utf8'))),
    ours: time(() => decodeSegment(ours.body, ours.planBytes)),
  };
  const encode = {
    jsonRecords: time(() => Buffer.from(JSON.stringify(batch))),
    ours: time(() => encodeSegment('deliveries', batch)),
  };
  return {
    records: rounds * segment,
    bytesPerRecord: { jsonRecords: jsonRecords.length / segment, jsonColumns: jsonColumns.length / segment, ours: ours.body.length / segment },
    decodeRecordsPerSecond: decode,
    encodeRecordsPerSecond: encode,
    decodeRatio: decode.ours / decode.jsonRecords,
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(JSON.stringify(benchSegment(Number(process.argv[2] ?? 200_000)), null, 2));
