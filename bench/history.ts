// An export reads the change, not the history: the same changeset exported from a workspace with a
// long source log behind its cursor and from one with none. The history is written straight through
// SourceLog.append (no HTTP), one segment per 1,000 records, as ingest batches would make them.
import type { Services } from '../src/lib/services.js';
import { countRequests } from '../src/local/requests.js';
import { benchServices, customerSas, deliveryRow } from './pipeline.js';

export interface HistoryBenchResult {
  historyRows: number;
  historySegments: number;
  changesetRows: number;
  rounds: number;
  /** Median seconds of one changeset export (lease → read twice → parquet → blob → checkpoint). */
  withHistorySeconds: number;
  withoutHistorySeconds: number;
  ratio: number;
  /** Storage requests of one changeset export (one file), counted in the last round. */
  requestsPerChangeset: number;
}

const BATCH = 1000;

function records(from: number, count: number) {
  return Array.from({ length: count }, (_, j) => {
    const r = deliveryRow(from + j) as Record<string, unknown>;
    for (const k of Object.keys(r)) if (r[k] === null) delete r[k];
    return r;
  });
}

/** An integration whose (empty) deliveries initial sync is done. */
async function initialSyncDone(services: Services, connectionString: string, workspaceId: number): Promise<void> {
  await services.integrations.put(workspaceId, { sasUrl: await customerSas(connectionString, `bench-${workspaceId}`), files: ['deliveries'] });
  await services.exporter().run({ workspaceId, fileType: 'deliveries' }, 'bench');
}

/** Moves the cursor to the head, as if the history had been exported. */
async function exportedThroughHead(services: Services, workspaceId: number): Promise<void> {
  const head = await services.source.head(workspaceId, 'deliveries');
  const cursor = await services.cursors.get(workspaceId, 'deliveries');
  if (cursor.lastSeq !== head.seq) await services.cursors.save({ ...cursor, lastSeq: head.seq });
}

export async function benchExportAfterHistory(connectionString: string, workspaceId: number, historyRows: number, changesetRows = 1000, rounds = 9): Promise<HistoryBenchResult> {
  const services = benchServices(connectionString);
  await services.storage.ready();
  const withHistory = workspaceId;
  const without = workspaceId + 1;
  await initialSyncDone(services, connectionString, withHistory);
  await initialSyncDone(services, connectionString, without);
  // History rows carry only an id: the export never reads them, only their index entities.
  for (let i = 0; i < historyRows; i += BATCH) {
    const count = Math.min(BATCH, historyRows - i);
    await services.source.append(withHistory, [{ fileType: 'deliveries', records: Array.from({ length: count }, (_, j) => ({ delivery_id: `h${i + j}` })) }]);
  }
  // The cursor is moved past the history directly: exporting it is not what is measured.
  await exportedThroughHead(services, withHistory);
  const times: Record<number, number[]> = { [withHistory]: [], [without]: [] };
  let requestsPerChangeset = 0;
  for (let round = 0; round < rounds; round++) {
    for (const ws of round % 2 ? [without, withHistory] : [withHistory, without]) {
      await services.source.append(ws, [{ fileType: 'deliveries', records: records(round * changesetRows, changesetRows) }]);
      const counted = round === rounds - 1 && ws === withHistory ? countRequests() : undefined;
      const t0 = performance.now();
      const out = await services.exporter().run({ workspaceId: ws, fileType: 'deliveries' }, 'bench').finally(() => counted?.stop());
      times[ws].push((performance.now() - t0) / 1000);
      if (counted) requestsPerChangeset = counted.requests.length;
      const rows = out.files.reduce((n, f) => n + f.rows, 0);
      if (rows !== changesetRows) throw new Error(`bench: changeset exported ${rows} rows, expected ${changesetRows}`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const withHistorySeconds = median(times[withHistory]);
  const withoutHistorySeconds = median(times[without]);
  return { historyRows, historySegments: Math.ceil(historyRows / BATCH), changesetRows, rounds, withHistorySeconds, withoutHistorySeconds, ratio: withHistorySeconds / withoutHistorySeconds, requestsPerChangeset };
}
