// Telemetry fields through the OpenTelemetry API with in-memory providers (the Azure Monitor
// exporter reads the same spans and metrics when APPLICATIONINSIGHTS_CONNECTION_STRING is set).
import { beforeAll, describe, expect, it } from 'vitest';
import { metrics, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { Services } from '../../../src/lib/services.js';
import { createLogger } from '../../../src/lib/platform/log.js';
import { azureMonitorOptions, initTelemetry, telemetrySettings } from '../../../src/lib/platform/telemetry.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testServices } from '../../support/env.js';

class TestReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

const spans = new InMemorySpanExporter();
const reader = new TestReader();
let services: Services;
const lines: string[] = [];
const log = createLogger({ info: (l: unknown) => lines.push(String(l)), warn: (l: unknown) => lines.push(String(l)), error: (l: unknown) => lines.push(String(l)) });

beforeAll(async () => {
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));
  metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  services = await testServices({ EXPORT_MAX_ROWS_PER_FILE: '2' });
});

function sum(rm: ResourceMetrics, name: string, match: Record<string, unknown> = {}): number {
  let total = 0;
  for (const sm of rm.scopeMetrics) for (const m of sm.metrics) {
    if (m.descriptor.name !== name) continue;
    for (const dp of m.dataPoints) {
      if (Object.entries(match).every(([k, v]) => dp.attributes[k] === v)) total += typeof dp.value === 'number' ? dp.value : (dp.value as { sum: number }).sum;
    }
  }
  return total;
}

describe('telemetry', () => {
  it('is off without a connection string', async () => {
    expect(await initTelemetry({})).toBe(false);
  });

  it('keeps every trace by default (the distro would rate-limit to 5 per second) and sends metrics every 10 s', () => {
    const settings = telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=x' })!;
    expect(settings).toEqual({ connectionString: 'InstrumentationKey=x', samplingRatio: 1, metricIntervalMs: 10_000 });
    expect(azureMonitorOptions(settings)).toMatchObject({ samplingRatio: 1, tracesPerSecond: 0, azureMonitorExporterOptions: { connectionString: 'InstrumentationKey=x' } });
    expect(telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'c', TELEMETRY_SAMPLING_RATIO: '0.25', OTEL_METRIC_EXPORT_INTERVAL: '5000' })).toMatchObject({ samplingRatio: 0.25, metricIntervalMs: 5000 });
  });

  it('Entra ID authentication to Application Insights: a managed identity credential for the exporter', () => {
    const settings = telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'c', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=1234' })!;
    expect(settings.entra).toEqual({ clientId: '1234' });
    expect(azureMonitorOptions(settings).azureMonitorExporterOptions?.credential?.constructor.name).toBe('DefaultAzureCredential');
    expect(telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'c', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD' })!.entra).toEqual({});
    expect(azureMonitorOptions(telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'c' })!).azureMonitorExporterOptions?.credential).toBeUndefined();
  });

  it('a bad telemetry setting stops start-up with an error naming it', () => {
    expect(() => telemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'c', APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=1' })).toThrow(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING: must be "Authorization=AAD"/);
    const cs = { APPLICATIONINSIGHTS_CONNECTION_STRING: 'c' };
    expect(() => telemetrySettings({ ...cs, TELEMETRY_SAMPLING_RATIO: '2' })).toThrow(/TELEMETRY_SAMPLING_RATIO: must be a number from 0 to 1/);
    expect(() => telemetrySettings({ ...cs, TELEMETRY_SAMPLING_RATIO: 'all' })).toThrow(/TELEMETRY_SAMPLING_RATIO/);
    expect(() => telemetrySettings({ ...cs, OTEL_METRIC_EXPORT_INTERVAL: '10s' })).toThrow(/OTEL_METRIC_EXPORT_INTERVAL: must be a positive integer/);
  });

  it('an export emits a span, metrics and structured log lines with the correlation fields', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['deliveries'] });
    await services.ingest.ingest(ws, 'deliveries', ['a', 'b', 'c'].map((id) => ({ delivery_id: id, delivery_type: 'email', created_at: '2026-01-01T00:00:00Z' })));
    const out = await services.exporter(log.with({ invocationId: 'inv-1' })).run({ workspaceId: ws, fileType: 'deliveries' }, 'inv-1');
    expect(out.files.map((f) => f.rows)).toEqual([2, 1]);

    const span = spans.getFinishedSpans().find((s) => s.attributes['workspace.id'] === ws)!;
    expect(span.name).toBe('export');
    expect(span.attributes).toMatchObject({ 'export.file_type': 'deliveries', 'export.outcome': 'done', 'export.files': 2, 'export.rows': 3, 'export.sequence': 2, 'export.lag_seconds': 0 });
    expect(span.attributes['export.bytes']).toBeGreaterThan(0);

    const { resourceMetrics } = await reader.collect();
    expect(sum(resourceMetrics, 'export.rows', { 'workspace.id': ws })).toBe(3);
    expect(sum(resourceMetrics, 'export.files', { 'workspace.id': ws })).toBe(2);
    expect(sum(resourceMetrics, 'export.lag_seconds', { 'workspace.id': ws })).toBe(0);

    const records = lines.map((l) => JSON.parse(l)).filter((r) => r.workspaceId === ws);
    expect(records.filter((r) => r.message === 'export file written').map((r) => [r.sequence, r.rows, r.invocationId, r.fileType])).toEqual([
      [1, 2, 'inv-1', 'deliveries'],
      [2, 1, 'inv-1', 'deliveries'],
    ]);
    const finished = records.find((r) => r.message === 'export finished');
    expect(finished).toMatchObject({ workspaceId: ws, fileType: 'deliveries', outcome: 'done', files: 2, rows: 3, firstSequence: 1, lastSequence: 2, invocationId: 'inv-1' });
    expect(finished.bytes).toBeGreaterThan(0);
    expect(finished.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a credentials failure is counted by kind, logged without the SAS signature, and shows on the span', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: await c.policySas('p'), files: ['events'] });
    await c.revokePolicies();
    await services.ingest.ingest(ws, 'events', [{ event_id: 'e', name: 'n', type: 'event', timestamp: new Date().toISOString() }]);
    const out = await services.exporter(log).run({ workspaceId: ws, fileType: 'events' }, 'inv-2');
    expect(out.status).toBe('failed');
    const span = spans.getFinishedSpans().find((s) => s.attributes['workspace.id'] === ws)!;
    expect(span.attributes).toMatchObject({ 'export.outcome': 'failed', 'export.failure_kind': 'credentials' });
    expect(span.attributes['export.lag_seconds']).toBeGreaterThanOrEqual(0);
    const { resourceMetrics } = await reader.collect();
    expect(sum(resourceMetrics, 'export.failures', { 'export.failure_kind': 'credentials', 'export.file_type': 'events' })).toBeGreaterThanOrEqual(1);
    const failed = lines.map((l) => JSON.parse(l)).find((r) => r.workspaceId === ws && r.message === 'export failed');
    expect(failed).toMatchObject({ outcome: 'failed', failureKind: 'credentials', fileType: 'events' });
    // A SAS in any field is redacted by the logger itself.
    const leaky = createLogger({ info: (l: unknown) => lines.push(String(l)), warn: () => undefined, error: () => undefined });
    leaky.info('oops', { url: c.sasUrl });
    expect(lines.join('\n')).not.toMatch(/sig=/i);
    expect(lines.at(-1)).toContain(c.client.url);
  });
});
