// The timer's work: one export message per (workspace, enabled file type) of every enabled
// integration, except pairs whose export is running right now (their lease is held).
import type { Integrations } from './integration.js';
import type { Cursors } from './cursors.js';
import type { Clock } from './clock.js';
import { V1_FILE_TYPES } from './schemas.js';
import type { ExportJob } from './export.js';

export interface FanOutResult {
  workspaces: number;
  enqueued: number;
  running: number;
}

export async function fanOut(
  deps: { integrations: Integrations; cursors: Cursors; clock: Clock },
  enqueue: (job: ExportJob) => Promise<void>,
  concurrency = 32,
): Promise<FanOutResult> {
  const result: FanOutResult = { workspaces: 0, enqueued: 0, running: 0 };
  const pending = new Set<Promise<void>>();
  for await (const integration of deps.integrations.list()) {
    if (!integration.enabled) continue;
    result.workspaces++;
    const task = (async () => {
      const cursors = new Map((await deps.cursors.list(integration.workspaceId)).map((c) => [c.fileType, c]));
      const now = deps.clock.now();
      for (const fileType of integration.files) {
        if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) continue;
        if ((cursors.get(fileType)?.leaseUntil ?? 0) > now) {
          result.running++;
          continue;
        }
        await enqueue({ workspaceId: integration.workspaceId, fileType });
        result.enqueued++;
      }
    })();
    pending.add(task);
    task.finally(() => pending.delete(task)).catch(() => undefined);
    if (pending.size >= concurrency) await Promise.race(pending);
  }
  await Promise.all(pending);
  return result;
}
