// Application Insights through OpenTelemetry (@azure/monitor-opentelemetry): on when
// APPLICATIONINSIGHTS_CONNECTION_STRING is set, silent otherwise. The code only talks to the
// OpenTelemetry API, so tests register in-memory providers and assert the same spans and metrics.
import { metrics, trace, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import { UserError } from './errors.js';
import { redact } from './redaction.js';

const NAME = 'warehouse-export';

let started: Promise<boolean> | undefined;

/** Starts the Azure Monitor exporter once, when a connection string is configured. */
export function initTelemetry(env: Record<string, string | undefined> = process.env): Promise<boolean> {
  started ??= (async () => {
    const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING;
    if (!connectionString) return false;
    const { useAzureMonitor } = await import('@azure/monitor-opentelemetry');
    useAzureMonitor({ azureMonitorExporterOptions: { connectionString } });
    return true;
  })();
  return started;
}

export type FailureKind = 'credentials' | 'storage' | 'bad_data' | 'internal';

/** Why an export failed, for the failures metric: the customer's set-up, storage, bad input, or us. */
export function failureKind(e: unknown): FailureKind {
  if (e instanceof UserError) return e.code.startsWith('sas_') || e.code === 'container_not_found' || e.code === 'file_name_taken' ? 'credentials' : 'bad_data';
  const err = e as { statusCode?: number; code?: string; name?: string; message?: string };
  if (err?.name === 'RestError' || typeof err?.statusCode === 'number' || /ECONNREFUSED|ECONNRESET|ETIMEDOUT|socket hang up/.test(String(err?.code ?? err?.message ?? ''))) return 'storage';
  if (/^parquet:/.test(String(err?.message ?? ''))) return 'bad_data';
  return 'internal';
}

// Instruments are created lazily, so a provider registered after import (tests) is used.
const instruments = () => {
  const meter = metrics.getMeter(NAME);
  return {
    rows: meter.createCounter('export.rows', { description: 'rows written to parquet files' }),
    files: meter.createCounter('export.files', { description: 'parquet files committed' }),
    failures: meter.createCounter('export.failures', { description: 'failed exports by kind (credentials, storage, bad_data, internal)' }),
    poison: meter.createCounter('export.poison_messages', { description: 'export messages given up and moved to the poison queue' }),
    lag: meter.createHistogram('export.lag_seconds', { description: 'age of the oldest change not yet exported, per pair, after each export', unit: 's' }),
  };
};

export const telemetry = {
  /** Runs one export inside a span; `fn` sets the outcome fields with `span.setAttributes`. */
  async exportSpan<T>(attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
    return trace.getTracer(NAME).startActiveSpan('export', { attributes }, async (span) => {
      try {
        return await fn(span);
      } catch (e) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: redact(String((e as Error)?.message ?? e)) });
        span.setAttribute('export.failure_kind', failureKind(e));
        throw e;
      } finally {
        span.end();
      }
    });
  },
  fileWritten(attributes: { workspaceId: number; fileType: string }, rows: number): void {
    const i = instruments();
    const attrs = { 'workspace.id': attributes.workspaceId, 'export.file_type': attributes.fileType };
    i.rows.add(rows, attrs);
    i.files.add(1, attrs);
  },
  failure(kind: FailureKind, attributes: { workspaceId?: number; fileType?: string }): void {
    instruments().failures.add(1, { 'export.failure_kind': kind, ...(attributes.fileType ? { 'export.file_type': attributes.fileType } : {}) });
  },
  poisoned(fileType?: string): void {
    instruments().poison.add(1, fileType ? { 'export.file_type': fileType } : {});
  },
  lag(attributes: { workspaceId: number; fileType: string }, seconds: number): void {
    instruments().lag.record(seconds, { 'workspace.id': attributes.workspaceId, 'export.file_type': attributes.fileType });
  },
};
