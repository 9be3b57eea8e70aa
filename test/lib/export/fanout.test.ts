import { beforeAll, describe, expect, it } from 'vitest';
import type { Services } from '../../../src/lib/services.js';
import { enqueueEnabled, expandShard, sweepPage, tick } from '../../../src/lib/export/fanout.js';
import type { ExportJob, FanOutJob, ShardJob } from '../../../src/lib/export/message.js';
import { PENDING_SHARDS, PendingPairs, shardOf } from '../../../src/lib/source/pending.js';
import { SourceLog } from '../../../src/lib/source/source-log.js';
import { Exporter } from '../../../src/lib/export/job.js';
import { cursorFor } from '../../../src/lib/export/cursors.js';
import { identityOf } from '../../../src/lib/export/settings-check.js';
import { customerContainer } from '../../support/container.js';
import { freshWorkspace, testServices } from '../../support/env.js';

let services: Services;
beforeAll(async () => {
  services = await testServices();
});

const deliveries = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) => ({ delivery_id: `d${from + i}`, delivery_type: 'email', campaign_id: 1, created_at: new Date(Date.now() - 60_000 + i).toISOString() }));
const records = (from: number, to: number) => deliveries(from, to).map((d, i) => ({ ...d, created_at: Date.now() - 60_000 + i }));
const append = (w: number, from: number, to: number) => services.ingest.ingest(w, 'deliveries', deliveries(from, to));

/** The export messages a tick leads to for these workspaces: every page of their shards expanded. */
async function tickFor(workspaces: number[], pageSize?: number): Promise<string[]> {
  const jobs: ExportJob[] = [];
  const queue: ShardJob[] = [...new Set(workspaces.map(shardOf))].map((shard) => ({ shard }));
  for (let job = queue.shift(); job; job = queue.shift()) await expandShard(services, job, async (j) => { jobs.push(j); }, async (next) => { queue.push(next); }, pageSize);
  return jobs.filter((j) => workspaces.includes(j.workspaceId)).map((j) => `${workspaces.indexOf(j.workspaceId)}:${j.fileType}`).sort();
}

/** Runs every queued pair of these workspaces to its end, as the worker would. */
async function exportAll(workspaces: number[]): Promise<void> {
  const exporter = services.exporter();
  for (const job of await tickFor(workspaces)) {
    const [i, fileType] = job.split(':');
    await exporter.run({ workspaceId: workspaces[Number(i)], fileType: fileType as ExportJob['fileType'] }, 'test');
  }
}

describe('fan-out', () => {
  it('the sweep: one message per (workspace, enabled file type), running pairs too, none for types v1 does not know', async () => {
    const c = await customerContainer();
    const [a, b, v1] = [freshWorkspace(), freshWorkspace(), freshWorkspace()];
    await services.integrations.put(a, { sasUrl: c.sasUrl, blobPath: 'a', files: ['deliveries', 'people'] });
    await services.integrations.put(b, { sasUrl: c.sasUrl, blobPath: 'b', files: ['events', 'delivery_contents'] });
    await services.integrations.put(v1, { sasUrl: c.sasUrl, blobPath: 'v1', schemaVersion: 'v1', files: ['subjects', 'events'] });
    const jobs: ExportJob[] = [];
    const result = await enqueueEnabled(services.integrations.list(), async (job) => { jobs.push(job); });
    const mine = jobs.filter((j) => [a, b, v1].includes(j.workspaceId)).map((j) => `${j.workspaceId - a}:${j.fileType}`).sort();
    expect(mine).toEqual(['0:deliveries', '0:people', '1:content', '1:events', '2:subjects']);
    expect(result.enqueued).toBe(jobs.length);
  });

  it('a running pair is queued by its shard; its export answers busy and keeps the marker for the next tick', async () => {
    const c = await customerContainer();
    const w = freshWorkspace();
    await services.integrations.put(w, { sasUrl: c.sasUrl, blobPath: `run${w}`, files: ['deliveries', 'people'] });
    // w/people is exporting right now: its lease is held, on this integration's cursor.
    const cursor = cursorFor(await services.cursors.get(w, 'people'), identityOf((await services.integrations.get(w))!, 'people').instance, 0);
    await services.cursors.save({ ...cursor, leaseOwner: 'someone', leaseUntil: Date.now() + 60_000 });
    expect(await tickFor([w])).toEqual(['0:deliveries', '0:people']);
    expect((await services.exporter().run({ workspaceId: w, fileType: 'people' }, 'test')).status).toBe('busy');
    await exportAll([w]); // deliveries exported, people still busy
    expect(await tickFor([w])).toEqual(['0:people']);
  });

  it('a shard larger than a page: each invocation expands one page and chains the next, every marked pair once', async () => {
    const first = freshWorkspace();
    // 13 workspaces of one shard, 2 file types each: 26 markers, pages of 4.
    const ws = Array.from({ length: 13 }, (_, i) => first + i * PENDING_SHARDS);
    for (const w of ws) await new PendingPairs(services.storage).mark(w, ['deliveries', 'events']);
    const jobs: ExportJob[] = [];
    const pages: number[] = [];
    const queue: ShardJob[] = [{ shard: shardOf(first) }];
    for (let job = queue.shift(); job; job = queue.shift()) {
      const before = jobs.length;
      const r = await expandShard(services, job, async (j) => { jobs.push(j); }, async (next) => { queue.push(next); }, 4);
      expect(r.enqueued).toBe(jobs.length - before);
      pages.push(r.enqueued);
    }
    expect(Math.max(...pages)).toBeLessThanOrEqual(4);
    const mine = jobs.filter((j) => ws.includes(j.workspaceId)).map((j) => `${j.workspaceId}|${j.fileType}`);
    expect(mine.sort()).toEqual(ws.flatMap((w) => [`${w}|deliveries`, `${w}|events`]).sort());
    expect(pages.length).toBeGreaterThanOrEqual(Math.ceil(jobs.length / 4));
  });

  it('the sweep starts at most once per interval and walks every integration a page at a time', async () => {
    const first: FanOutJob[] = [];
    await tick(services, async (job) => { first.push(job); });
    const again: FanOutJob[] = [];
    expect((await tick(services, async (job) => { again.push(job); })).sweep).toBe(false);
    expect(again.some((j) => 'sweep' in j)).toBe(false);
    // Page by page (2 integrations each), every page chaining the next, until every workspace was seen.
    const seen = new Set<number>();
    let next: FanOutJob | undefined = { sweep: '' };
    let pages = 0;
    while (next && 'sweep' in next) {
      const token: string = next.sweep;
      next = undefined;
      await sweepPage(services, token, async (job) => { seen.add(job.workspaceId); }, async (job) => { next = job; }, 2);
      pages++;
    }
    const all: number[] = [];
    for await (const i of services.integrations.list()) if (i.enabled && i.files.length) all.push(i.workspaceId);
    expect(pages).toBeGreaterThan(1);
    expect(all.filter((w) => !seen.has(w))).toEqual([]);
  });

  it('a tick enqueues a fixed number of messages, one per shard', async () => {
    const jobs: FanOutJob[] = [];
    const result = await tick(services, async (job) => { jobs.push(job); });
    expect(jobs.filter((j) => 'shard' in j)).toHaveLength(PENDING_SHARDS);
    expect(result.shards).toBe(PENDING_SHARDS);
  });

  it('a tick with no changes enqueues nothing for a workspace that is up to date; a change or a settings change brings it back', async () => {
    const c = await customerContainer();
    const ws = [freshWorkspace(), freshWorkspace()];
    for (const w of ws) await services.integrations.put(w, { sasUrl: c.sasUrl, blobPath: `up${w}`, files: ['deliveries', 'people', 'attributes', 'events'] });
    await append(ws[0], 0, 10);
    expect(await tickFor(ws)).toEqual(['0:attributes', '0:deliveries', '0:events', '0:people', '1:attributes', '1:deliveries', '1:events', '1:people']);
    await exportAll(ws);
    expect(await tickFor(ws)).toEqual([]); // everything exported: nothing to do

    await append(ws[1], 10, 20);
    expect(await tickFor(ws)).toEqual(['1:deliveries']);
    await exportAll(ws);
    expect(await tickFor(ws)).toEqual([]);

    // A setting change marks the pairs it may start (here a file turned on: its initial sync).
    await services.integrations.setFile(ws[0], 'metrics', { enabled: true });
    expect(await tickFor(ws)).toContain('0:metrics');
  });

  it('every committed change is exported when a worker clears the marker while the commit is in flight', async () => {
    const c = await customerContainer();
    const w = freshWorkspace();
    await services.integrations.put(w, { sasUrl: c.sasUrl, blobPath: `race${w}`, files: ['deliveries'] });
    await exportAll([w]);
    // Ingest has read the head and marked the pair; before its commit lands, a worker reads that
    // mark, finds nothing to export and clears it. Then the commit is sent.
    const outcomes: string[] = [];
    let raced = false;
    const log = new SourceLog(services.storage, {
      beforeCommit: async () => {
        if (raced) return;
        raced = true;
        outcomes.push((await services.exporter().run({ workspaceId: w, fileType: 'deliveries' }, 'racer')).status);
      },
    });
    await log.append(w, [{ fileType: 'deliveries', records: records(0, 5) }]);
    expect(outcomes).toEqual(['nothing']);
    // The worker touched the head after clearing: the commit conflicted and retried with a new mark.
    expect(await tickFor([w])).toEqual(['0:deliveries']);
    await exportAll([w]);
    expect(await services.source.head(w, 'deliveries')).toMatchObject({ seq: 5 });
    expect((await services.cursors.get(w, 'deliveries')).lastSeq).toBe(5);
    expect(await tickFor([w])).toEqual([]);
  });

  it('an ingest that crashes between its mark and its commit leaves a false positive, never a missed change', async () => {
    const c = await customerContainer();
    const w = freshWorkspace();
    await services.integrations.put(w, { sasUrl: c.sasUrl, blobPath: `crash${w}`, files: ['deliveries'] });
    await exportAll([w]);
    const log = new SourceLog(services.storage, { beforeCommit: () => { throw new Error('crash'); } });
    await expect(log.append(w, [{ fileType: 'deliveries', records: records(0, 5) }])).rejects.toThrow('crash');
    expect(await tickFor([w])).toEqual(['0:deliveries']);
    await exportAll([w]); // nothing to export: the marker goes
    expect(await tickFor([w])).toEqual([]);
  });

  it('a fan-out or an export that crashes keeps the marker: the next tick enqueues the pair again', async () => {
    const c = await customerContainer();
    const w = freshWorkspace();
    await services.integrations.put(w, { sasUrl: c.sasUrl, blobPath: `tick${w}`, files: ['deliveries', 'events'] });
    await exportAll([w]);
    await append(w, 0, 5);
    // The shard's worker dies right after sending the pair's message (which is then lost too).
    const sent: ExportJob[] = [];
    await expect(expandShard(services, { shard: shardOf(w) }, async (job) => { sent.push(job); throw new Error('crash'); }, async () => undefined)).rejects.toThrow('crash');
    expect(sent.length).toBeGreaterThan(0);
    expect(await tickFor([w])).toEqual(['0:deliveries']);
    // The export dies after writing its file, before it could clear the marker.
    const crashing = new Exporter({ ...services, faults: { afterCheckpoint: () => { throw new Error('crash'); } } });
    await expect(crashing.run({ workspaceId: w, fileType: 'deliveries' }, 'crashing')).rejects.toThrow('crash');
    expect(await tickFor([w])).toEqual(['0:deliveries']);
    await exportAll([w]);
    expect((await services.cursors.get(w, 'deliveries')).lastSeq).toBe(5);
    expect(await tickFor([w])).toEqual([]);
  });
});
