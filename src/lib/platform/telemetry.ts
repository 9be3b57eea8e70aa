// Application Insights through OpenTelemetry (@azure/monitor-opentelemetry): on when
// APPLICATIONINSIGHTS_CONNECTION_STRING is set, silent otherwise. The code only talks to the
// OpenTelemetry API, so tests register in-memory providers and assert the same spans and metrics.
import { createRequire } from 'node:module';
import { metrics, trace, SpanStatusCode, type Attributes, type Span } from '@opentelemetry/api';
import type { AzureMonitorOpenTelemetryOptions } from '@azure/monitor-opentelemetry';
import { DefaultAzureCredential } from '@azure/identity';
import { ConfigError, UserError } from './errors.js';
import { redact } from './redaction.js';

const NAME = 'warehouse-export';

/** What initTelemetry passes to useAzureMonitor, from the app settings. */
export interface TelemetrySettings {
  connectionString: string;
  /** Share of traces kept, 0..1 (TELEMETRY_SAMPLING_RATIO, default 1: every export span). */
  samplingRatio: number;
  /** How often metrics are sent (OTEL_METRIC_EXPORT_INTERVAL in ms; default here 10 s, the distro's 60 s). */
  metricIntervalMs: number;
  /**
   * Entra ID (Microsoft Entra) authentication to Application Insights, from
   * APPLICATIONINSIGHTS_AUTHENTICATION_STRING (`Authorization=AAD[;ClientId=<user-assigned identity>]`,
   * the setting the Functions host reads too): required when the resource has local auth disabled.
   */
  entra?: { clientId?: string };
}

/** Reads the telemetry settings; undefined when no connection string is set (telemetry off). */
export function telemetrySettings(env: Record<string, string | undefined>): TelemetrySettings | undefined {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING;
  if (!connectionString) return undefined;
  const ratioText = env.TELEMETRY_SAMPLING_RATIO || '1';
  const samplingRatio = Number(ratioText);
  if (!(samplingRatio >= 0 && samplingRatio <= 1)) {
    throw new ConfigError('TELEMETRY_SAMPLING_RATIO', `must be a number from 0 to 1 (the share of export traces kept), got "${ratioText}"`);
  }
  const intervalText = env.OTEL_METRIC_EXPORT_INTERVAL || '10000';
  const metricIntervalMs = Number(intervalText);
  if (!Number.isSafeInteger(metricIntervalMs) || metricIntervalMs <= 0) {
    throw new ConfigError('OTEL_METRIC_EXPORT_INTERVAL', `must be a positive integer of milliseconds, got "${intervalText}"`);
  }
  const auth = env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING;
  if (!auth) return { connectionString, samplingRatio, metricIntervalMs };
  const parts = new Map(auth.split(';').filter(Boolean).map((p) => [p.slice(0, p.indexOf('=')).trim().toLowerCase(), p.slice(p.indexOf('=') + 1).trim()]));
  if (parts.get('authorization')?.toUpperCase() !== 'AAD') {
    throw new ConfigError('APPLICATIONINSIGHTS_AUTHENTICATION_STRING', `must be "Authorization=AAD" or "Authorization=AAD;ClientId=<client id>", got "${auth}"`);
  }
  const clientId = parts.get('clientid');
  return { connectionString, samplingRatio, metricIntervalMs, entra: clientId ? { clientId } : {} };
}

/** The distro's options: a fixed-ratio sampler instead of its default of 5 traces per second. */
export function azureMonitorOptions(settings: TelemetrySettings): AzureMonitorOpenTelemetryOptions {
  const credential = settings.entra ? new DefaultAzureCredential(settings.entra.clientId ? { managedIdentityClientId: settings.entra.clientId } : {}) : undefined;
  return {
    azureMonitorExporterOptions: { connectionString: settings.connectionString, ...(credential ? { credential } : {}) },
    // tracesPerSecond 0 turns the rate-limited sampler off; samplingRatio then decides per trace.
    samplingRatio: settings.samplingRatio,
    tracesPerSecond: 0,
  };
}

let started: Promise<boolean> | undefined;
let shutdown: (() => Promise<void>) | undefined;

/**
 * Starts the Azure Monitor distro once, when a connection string is configured. `extra` adds span
 * processors or metric readers next to Azure Monitor's (tests: in-memory exporters).
 */
export function initTelemetry(
  env: Record<string, string | undefined> = process.env,
  extra: Pick<AzureMonitorOpenTelemetryOptions, 'spanProcessors' | 'metricReaders'> = {},
): Promise<boolean> {
  started ??= (async () => {
    const settings = telemetrySettings(env);
    if (!settings) return false;
    // The distro reads its metric export interval only from this variable (its default: 60 s).
    process.env.OTEL_METRIC_EXPORT_INTERVAL = String(settings.metricIntervalMs);
    const { useAzureMonitor, shutdownAzureMonitor } = await import('@azure/monitor-opentelemetry');
    useAzureMonitor({ ...azureMonitorOptions(settings), ...extra });
    // The distro's Azure SDK instrumentation hooks `require('@azure/core-tracing')`, which an ESM app
    // never calls, so the SDKs' storage calls would record no spans. Requiring it once here runs
    // that hook; core-tracing keeps its instrumenter in state shared by its CJS and ESM builds.
    createRequire(import.meta.url)('@azure/core-tracing');
    shutdown = async () => void (await shutdownAzureMonitor());
    return true;
  })();
  return started;
}

/**
 * Sends what is buffered and stops the exporters (the host's appTerminate hook). Resolves false
 * when telemetry was off or the last send failed; never throws, so shutdown goes on.
 */
export async function flushTelemetry(): Promise<boolean> {
  if (!shutdown) return false;
  try {
    await shutdown();
    return true;
  } catch {
    return false;
  }
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
