// The real Azure Monitor distro (useAzureMonitor, as initTelemetry starts it) with an in-memory
// exporter beside its own: every export span is kept, and the Azure SDK calls an export makes are
// its children (Application Insights dependencies under the export). The distro's own exporter
// points at a closed local port, so nothing leaves the machine.
import { beforeAll, describe, expect, it } from 'vitest';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Services } from '../../../src/lib/services.js';
import { createLogger } from '../../../src/lib/platform/log.js';
import { initTelemetry } from '../../../src/lib/platform/telemetry.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testServices } from '../../support/env.js';

const spans = new InMemorySpanExporter();
const processor = new SimpleSpanProcessor(spans);
let services: Services;
const log = createLogger({ info: () => undefined, warn: () => undefined, error: () => undefined });

beforeAll(async () => {
  process.env.APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL = 'true';
  const on = await initTelemetry(
    { APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/;LiveEndpoint=http://127.0.0.1:9/' },
    { spanProcessors: [processor] },
  );
  expect(on).toBe(true);
  services = await testServices();
});

const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

/** Spans below `root` in its trace, at any depth. */
function descendants(all: ReadableSpan[], root: ReadableSpan): ReadableSpan[] {
  const ids = new Set([root.spanContext().spanId]);
  const found: ReadableSpan[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of all) {
      const p = parentOf(s);
      if (p && ids.has(p) && !ids.has(s.spanContext().spanId)) {
        ids.add(s.spanContext().spanId);
        found.push(s);
        grew = true;
      }
    }
  }
  return found;
}

describe('telemetry through the Azure Monitor distro', () => {
  it('keeps every export span (no rate limit) and records the storage calls of an export as its children', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    await services.integrations.put(ws, { sasUrl: c.sasUrl, files: ['deliveries', 'events'] });
    await services.ingest.ingest(ws, 'deliveries', [{ delivery_id: 'd', delivery_type: 'email', created_at: '2026-01-01T00:00:00Z' }]);
    // More exports at once than the distro's default sampler (5 traces per second) would keep.
    await Promise.all(Array.from({ length: 12 }, (_, i) => services.exporter(log).run({ workspaceId: ws, fileType: i === 0 ? 'deliveries' : 'events' }, `inv-${i}`)));
    await processor.forceFlush();

    const finished = spans.getFinishedSpans();
    const exportSpans = finished.filter((s) => s.name === 'export' && s.attributes['workspace.id'] === ws);
    expect(exportSpans).toHaveLength(12);
    const withFile = exportSpans.find((s) => s.attributes['export.file_type'] === 'deliveries' && s.attributes['export.files'] === 1)!;
    expect(withFile).toBeDefined();
    const below = descendants(finished, withFile);
    const names = new Set(below.map((s) => s.name));
    // Table calls (cursor, source index), the staged blocks and commit of the customer's blob, and their HTTP requests.
    expect([...names].some((n) => /^TableClient/.test(n)), [...names].join(', ')).toBe(true);
    expect([...names].some((n) => /^BlockBlobClient-(stageBlock|commitBlockList|upload)/.test(n)), [...names].join(', ')).toBe(true);
    expect(below.filter((s) => /^HTTP (GET|PUT|POST|PATCH|HEAD)/.test(s.name)).length).toBeGreaterThan(0);
    // The storage operations hang directly below the export span.
    expect(below.some((s) => parentOf(s) === withFile.spanContext().spanId && /Client/.test(s.name))).toBe(true);
  });
});
