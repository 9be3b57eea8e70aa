import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getServices, startupConfig } from '../lib/services.js';
import { fanOut } from '../lib/fanout.js';

/** Every EXPORT_SCHEDULE tick: one queue message per (workspace, enabled file type) not already running. */
export async function exportTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const services = await getServices();
  const exporter = services.exporter();
  const result = await fanOut(services, (job) => exporter.enqueue(job));
  context.info('export fan-out', result);
}

app.timer('exportTimer', { schedule: startupConfig().exportSchedule, handler: exportTimer });
