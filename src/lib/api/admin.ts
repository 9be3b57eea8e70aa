// api/: the management and operations routes as plain calls over the composed services
// (admin.ts, status.ts, operations.ts); src/functions only parses the request and answers.
//
// The integration management API (SPEC section 6) as plain calls: each applies one rule of
// integration/settings.ts and queues the exports that should start right away.
import type { Services } from '../services.js';
import type { ChangeResult } from '../integration/settings.js';
import { parseFileTypeParam } from '../integration/settings.js';
import { integrationStatus } from './status.js';
import { exportHistory } from './history.js';

export interface AdminAnswer {
  status: number;
  body: unknown;
}

export class Admin {
  constructor(private readonly services: Services) {}

  private async answer(workspaceId: number, result: ChangeResult, status = 200): Promise<AdminAnswer> {
    const exporter = this.services.exporter();
    await Promise.all(result.startNow.map((fileType) => exporter.enqueue({ workspaceId, fileType })));
    return { status, body: { ...result.integration, startedNow: result.startNow, ...(result.notice ? { notice: result.notice } : {}) } };
  }

  async put(workspaceId: number, body: unknown): Promise<AdminAnswer> {
    const existed = (await this.services.integrations.get(workspaceId)) !== undefined;
    return this.answer(workspaceId, await this.services.integrations.put(workspaceId, body), existed ? 200 : 201);
  }

  async validate(workspaceId: number, body: unknown): Promise<AdminAnswer> {
    return { status: 200, body: { valid: true, ...(await this.services.integrations.validate(workspaceId, body)) } };
  }

  async status(workspaceId: number): Promise<AdminAnswer> {
    return { status: 200, body: await integrationStatus(this.services, workspaceId) };
  }

  async exports(workspaceId: number, query: Record<string, string>): Promise<AdminAnswer> {
    return { status: 200, body: await exportHistory(this.services, workspaceId, query) };
  }

  async setFile(workspaceId: number, fileTypeToken: string | undefined, body: unknown): Promise<AdminAnswer> {
    const fileType = parseFileTypeParam(fileTypeToken);
    return this.answer(workspaceId, await this.services.integrations.setFile(workspaceId, fileType, body));
  }

  async enable(workspaceId: number): Promise<AdminAnswer> {
    return this.answer(workspaceId, await this.services.integrations.enable(workspaceId));
  }

  async disable(workspaceId: number): Promise<AdminAnswer> {
    return this.answer(workspaceId, await this.services.integrations.disable(workspaceId));
  }

  async upgrade(workspaceId: number, body: unknown): Promise<AdminAnswer> {
    return this.answer(workspaceId, await this.services.integrations.upgrade(workspaceId, body));
  }

  async delete(workspaceId: number): Promise<AdminAnswer> {
    await this.services.integrations.require(workspaceId);
    await this.services.integrations.delete(workspaceId);
    return { status: 200, body: { deleted: true, notice: 'Exports stopped and settings removed. Files already in your container are yours and stay there.' } };
  }
}
