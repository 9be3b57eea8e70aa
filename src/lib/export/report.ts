// What an export invocation tells the operator: one span per invocation with its outcome, the
// files/rows/failure metrics, the lag, and one structured log line (redacted, never a SAS).
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/log.js';
import { redact } from '../platform/redaction.js';
import { failureKind, telemetry } from '../platform/telemetry.js';
import type { ExportJob } from './message.js';

export type ExportStatus = 'skipped' | 'busy' | 'nothing' | 'done' | 'continued' | 'failed';

export interface ExportOutcome {
  status: ExportStatus;
  files: { name: string; sequence: number; rows: number; bytes: number }[];
  reason?: string;
  failureKind?: 'credentials' | 'bad_data';
  /** The pair's lag when the invocation already knows it (else it is read after the invocation). */
  lagSeconds?: number;
}

export interface ReportDeps {
  clock: Clock;
  log?: Logger;
  /** Age in seconds of the oldest change not exported yet (0 when up to date). */
  lagSeconds(job: ExportJob): Promise<number | undefined>;
}

/** Runs one invocation inside its span and reports how it went. */
export async function reported(deps: ReportDeps, job: ExportJob, invocation: () => Promise<ExportOutcome>): Promise<ExportOutcome> {
  const started = deps.clock.now();
  const fields = { workspaceId: job.workspaceId, fileType: job.fileType };
  return telemetry.exportSpan({ 'workspace.id': job.workspaceId, 'export.file_type': job.fileType }, async (span) => {
    let outcome: ExportOutcome;
    try {
      outcome = await invocation();
    } catch (e) {
      const kind = failureKind(e);
      telemetry.failure(kind, fields);
      deps.log?.error('export failed', { ...fields, outcome: 'error', failureKind: kind, error: redact(String((e as Error)?.message ?? e)), durationMs: deps.clock.now() - started });
      throw e;
    }
    const rows = outcome.files.reduce((n, f) => n + f.rows, 0);
    const bytes = outcome.files.reduce((n, f) => n + f.bytes, 0);
    const sequences = outcome.files.map((f) => f.sequence);
    const summary = {
      ...fields,
      outcome: outcome.status,
      files: outcome.files.length,
      rows,
      bytes,
      ...(sequences.length ? { firstSequence: Math.min(...sequences), lastSequence: Math.max(...sequences) } : {}),
      durationMs: deps.clock.now() - started,
      ...(outcome.reason ? { reason: outcome.reason } : {}),
    };
    span.setAttributes({
      'export.outcome': outcome.status,
      'export.files': outcome.files.length,
      'export.rows': rows,
      'export.bytes': bytes,
      ...(sequences.length ? { 'export.sequence': Math.max(...sequences) } : {}),
    });
    if (outcome.status === 'failed') {
      const kind = outcome.failureKind ?? 'credentials';
      telemetry.failure(kind, fields);
      span.setAttribute('export.failure_kind', kind);
      deps.log?.warn('export failed', { ...summary, failureKind: kind });
    } else {
      deps.log?.info('export finished', summary);
    }
    const lag = outcome.lagSeconds ?? (await deps.lagSeconds(job).catch(() => undefined));
    if (lag !== undefined) {
      telemetry.lag(fields, lag);
      span.setAttribute('export.lag_seconds', lag);
    }
    return outcome;
  });
}
