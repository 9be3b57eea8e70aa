// One Azurite (in-memory, free loopback ports) for the whole test run; tests read its connection string with inject().
import type { TestProject } from 'vitest/node';
import { startAzurite, type Azurite } from '../../src/local/azurite.js';

let azurite: Azurite | undefined;

export async function setup(project: TestProject): Promise<void> {
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
