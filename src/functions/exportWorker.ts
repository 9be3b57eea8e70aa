import { app, type InvocationContext } from '@azure/functions';
import { getServices, startupConfig } from '../lib/services.js';
import { createLogger } from '../lib/platform/log.js';
import { enqueueFanOut, parseExportMessage, parseFanOutMessage, type ExportJob, type FanOutJob } from '../lib/export/message.js';
import { expandShard, sweepPage } from '../lib/export/fanout.js';
import { telemetry } from '../lib/platform/telemetry.js';
import { maxDequeueCount } from '../lib/platform/config.js';

/** One export job, or one part of the timer's fan-out. A malformed message throws, so the host retries it and then moves it to the poison queue. */
export async function exportWorker(message: unknown, context: InvocationContext): Promise<void> {
  const log = createLogger(context, { invocationId: context.invocationId });
  const fanOut = parseFanOutMessage(message);
  if (fanOut) {
    const services = await getServices();
    const exporter = services.exporter();
    const enqueue = (job: ExportJob) => exporter.enqueue(job);
    const started = Date.now();
    const next = (job: FanOutJob) => enqueueFanOut(services.storage.exportQueue, job);
    const result = 'shard' in fanOut ? await expandShard(services, fanOut, enqueue, next) : await sweepPage(services, fanOut.sweep, enqueue, next);
    log.info('export fan-out', { ...('shard' in fanOut ? fanOut : { sweep: true }), ...result, durationMs: Date.now() - started });
    return;
  }
  const lastAttempt = Number(context.triggerMetadata?.dequeueCount ?? 1) >= maxDequeueCount();
  const job = parseExportMessage(message);
  try {
    if (!job.success) {
      log.error('malformed export message', { issues: job.issues, dequeueCount: context.triggerMetadata?.dequeueCount });
      throw new Error('malformed export message');
    }
    const services = await getServices();
    await services.exporter(log).run(job.data, context.invocationId);
  } catch (e) {
    if (lastAttempt) {
      telemetry.poisoned(job.success ? job.data.fileType : undefined);
      log.error('export message goes to the poison queue', { ...(job.success ? job.data : {}), dequeueCount: context.triggerMetadata?.dequeueCount });
    }
    throw e;
  }
}

app.storageQueue('exportWorker', { queueName: startupConfig().exportQueueName, connection: 'AzureWebJobsStorage', handler: exportWorker });
