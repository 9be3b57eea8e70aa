// App entry (package.json "main"): telemetry first (when configured), then every function registers by being imported.
import { initTelemetry } from './lib/platform/telemetry.js';

await initTelemetry();
await import('./functions/ingest.js');
await import('./functions/integration.js');
await import('./functions/exportTimer.js');
await import('./functions/exportWorker.js');
await import('./functions/operations.js');
await import('./functions/console.js');
