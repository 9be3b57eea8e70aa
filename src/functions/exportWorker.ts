import { app, type InvocationContext } from '@azure/functions';
import { z } from 'zod';
import { getServices, startupConfig } from '../lib/services.js';
import { FILE_TYPES } from '../lib/schemas.js';

const exportMessage = z.strictObject({
  workspaceId: z.number().int().positive(),
  fileType: z.enum(FILE_TYPES),
});

/** One export job: a malformed message throws, so the host retries it and then moves it to the poison queue. */
export async function exportWorker(message: unknown, context: InvocationContext): Promise<void> {
  const parsed = exportMessage.safeParse(message);
  if (!parsed.success) {
    context.error('malformed export message', { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) });
    throw new Error('malformed export message');
  }
  const services = await getServices();
  const exporter = services.exporter({
    info: (m, f) => context.info(m, f),
    warn: (m, f) => context.warn(m, f),
  });
  const outcome = await exporter.run(parsed.data, context.invocationId);
  const rows = outcome.files.reduce((n, f) => n + f.rows, 0);
  const fields = { ...parsed.data, status: outcome.status, files: outcome.files.length, rows, reason: outcome.reason };
  if (outcome.status === 'failed') context.warn('export failed', fields);
  else context.info('export finished', fields);
}

app.storageQueue('exportWorker', { queueName: startupConfig().exportQueueName, connection: 'AzureWebJobsStorage', handler: exportWorker });
