// Route parameters shared by the HTTP triggers.
import { workspaceId as workspaceIdSchema } from './ingest-schemas.js';
import { UserError } from '../platform/errors.js';

export function parseWorkspaceId(raw: string | undefined): number {
  const parsed = workspaceIdSchema.safeParse(raw);
  if (!parsed.success) throw new UserError('invalid_workspace_id', 'workspaceId must be a positive integer', 400, [{ path: 'workspaceId', message: 'must be a positive integer' }]);
  return parsed.data;
}
