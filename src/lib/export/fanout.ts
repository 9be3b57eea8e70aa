// The timer's work: one export message per (workspace, enabled file type) of every enabled
// integration, except pairs whose export is running right now (their lease is held).
import type { Integrations } from '../integration/settings.js';
import type { Cursors } from './cursors.js';
import type { Clock } from '../platform/clock.js';
import { V1_FILE_TYPES } from '../contract/schemas.js';
import type { ExportJob } from './message.js';

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
  // One query for the pairs running now (their lease is held), instead of one per workspace.
  const running = await deps.cursors.leased(deps.clock.now());
  const pending = new Set<Promise<void>>();
  for await (const integration of deps.integrations.list()) {
    if (!integration.enabled) continue;
    result.workspaces++;
    const due = integration.files.filter((fileType) => {
      if (integration.schemaVersion === 'v1' && !V1_FILE_TYPES.includes(fileType)) return false;
      if (running.has(`${integration.workspaceId}|${fileType}`)) {
        result.running++;
        return false;
      }
      return true;
    });
    const task = Promise.all(due.map((fileType) => enqueue({ workspaceId: integration.workspaceId, fileType }))).then(() => {
      result.enqueued += due.length;
    });
    pending.add(task);
    task.finally(() => pending.delete(task)).catch(() => undefined);
    if (pending.size >= concurrency) await Promise.race(pending);
  }
  await Promise.all(pending);
  return result;
}
