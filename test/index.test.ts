// The app's entry on the local host with telemetry on, sending to a local stand-in of the
// Application Insights ingestion endpoint: what an export buffered (its span, its metrics) reaches
// the endpoint when the host stops the worker (appTerminate), before any timer would have sent it.
// The exporter speaks HTTPS only: the stand-in has a throw-away self-signed certificate (openssl),
// trusted by this test process alone.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Host } from '../src/local/host.js';
import { startAppHost } from './support/app-host.js';
import { customerContainer } from './support/container.js';
import { freshWorkspace } from './support/env.js';

let ingestion: Server;
const received: string[] = [];
let host: Host;

function selfSignedCertificate(): { key: Buffer; cert: Buffer } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ingestion-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem')], { stdio: 'ignore' });
    return { key: readFileSync(path.join(dir, 'key.pem')), cert: readFileSync(path.join(dir, 'cert.pem')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

beforeAll(async () => {
  process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
  ingestion = createServer(selfSignedCertificate(), (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push((req.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8'));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ itemsReceived: 0, itemsAccepted: 0, errors: [] }));
    });
  });
  await new Promise<void>((resolve) => ingestion.listen(0, '127.0.0.1', resolve));
  const endpoint = `https://127.0.0.1:${(ingestion.address() as AddressInfo).port}/`;
  host = await startAppHost({
    queue: `flush${Math.random().toString(36).slice(2, 8)}`,
    settings: {
      APPLICATIONINSIGHTS_CONNECTION_STRING: `InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=${endpoint};LiveEndpoint=${endpoint}`,
      APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL: 'true',
      // Longer than the test: only the flush at shutdown can deliver the metrics.
      OTEL_METRIC_EXPORT_INTERVAL: '600000',
    },
  });
});

afterAll(async () => {
  await host?.stop();
  await new Promise<void>((resolve) => ingestion.close(() => resolve()));
});

describe('src/index.ts', () => {
  it('sends the buffered export span and metrics when the host stops the worker', async () => {
    const ws = freshWorkspace();
    const c = await customerContainer();
    const call = (method: string, path: string, body: unknown) =>
      fetch(`${host.url}/api/workspaces/${ws}/${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await call('POST', 'ingest/events', [{ event_id: 'e1', name: 'n', type: 'event', timestamp: new Date().toISOString() }])).status).toBe(202);
    expect((await call('PUT', 'integration', { sasUrl: c.sasUrl, files: ['events'] })).status).toBe(201);
    await host.whenIdle({ timeoutMs: 60_000 });
    const before = received.join('\n');
    expect(before).not.toContain('export.rows');

    await host.stop();
    const sent = received.join('\n');
    expect(sent).toContain('"export.rows"');
    expect(sent).toMatch(/"name":"export"/);
  });
});
