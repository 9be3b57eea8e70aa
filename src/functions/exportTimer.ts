import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getServices, startupConfig } from '../lib/services.js';
import { fanOut } from '../lib/export/fanout.js';
import { createLogger } from '../lib/platform/log.js';

/** Every EXPORT_SCHEDULE tick: one queue message per (workspace, enabled file type) not already running. */
export async function exportTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const services = await getServices();
  const exporter = services.exporter();
  const started = Date.now();
  const result = await fanOut(services, (job) => exporter.enqueue(job));
  createLogger(context, { invocationId: context.invocationId }).info('export fan-out', { ...result, durationMs: Date.now() - started });
}

app.timer('exportTimer', { schedule: startupConfig().exportSchedule, handler: exportTimer });
