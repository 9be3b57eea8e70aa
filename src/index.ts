// App entry (package.json "main"): telemetry first (when configured), then every function registers by being imported.
import { app } from '@azure/functions';
import { flushTelemetry, initTelemetry } from './lib/platform/telemetry.js';

await initTelemetry();
// The host stops a worker on scale-in, restart or deployment: send buffered spans and metrics first.
app.hook.appTerminate(async () => {
  await flushTelemetry();
});
await import('./functions/ingest.js');
await import('./functions/integration.js');
await import('./functions/exportTimer.js');
await import('./functions/exportWorker.js');
await import('./functions/operations.js');
await import('./functions/console.js');
