// One Azurite (in-memory, free loopback ports) for the whole test run; tests read its connection string with inject().
// Azure's limits are enforced on the app's storage clients for the whole run (AZURE_LIMITS_STRICT).
import type { TestProject } from 'vitest/node';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';

let azurite: Azurite | undefined;

export async function setup(project: TestProject): Promise<void> {
  // Azurite does not enforce several of Azure's limits: the app's clients do (src/lib/platform/azure-limits.ts).
  // Set before the test processes start, so it reaches them and the app hosts they run. AZURE_LIMITS_STRICT=0 turns it off.
  process.env.AZURE_LIMITS_STRICT ??= '1';
  azurite = await startAzurite();
  project.provide('storageConnectionString', azurite.connectionString);
  project.provide('azuritePorts', { blob: azurite.blobPort, queue: azurite.queuePort, table: azurite.tablePort });
}

export async function teardown(): Promise<void> {
  await azurite?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    storageConnectionString: string;
    azuritePorts: { blob: number; queue: number; table: number };
  }
}
