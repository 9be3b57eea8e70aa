import { app, type InvocationContext, type Timer } from '@azure/functions';
import { getServices, startupConfig } from '../lib/services.js';
import { tick } from '../lib/export/fanout.js';
import { enqueueFanOut } from '../lib/export/message.js';
import { createLogger } from '../lib/platform/log.js';

/** Every EXPORT_SCHEDULE tick: one message per shard of pending pairs (and, once a day, the sweep); workers expand them. */
export async function exportTimer(_timer: Timer, context: InvocationContext): Promise<void> {
  const services = await getServices();
  const started = Date.now();
  const result = await tick(services, (job) => enqueueFanOut(services.storage.exportQueue, job));
  createLogger(context, { invocationId: context.invocationId }).info('export tick', { ...result, durationMs: Date.now() - started });
}

app.timer('exportTimer', { schedule: startupConfig().exportSchedule, handler: exportTimer });
