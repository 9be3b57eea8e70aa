// The fan-out figures, in a process of their own (run.ts forks this file): one Functions worker runs
// the fan-out and nothing else, while the bench's own process has by then held DuckDB, an in-process
// host and millions of rows of other benchmarks. Each figure on a fresh Azurite: its in-memory queue
// gets slower with every message it holds (an index insert linear in them), so a figure measured
// after 80,000 others would pay for them.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startAzurite } from '../src/local/azurite.js';
import { benchFanOut, benchFullFanOut, benchQueueSends, type FanOutBenchResult, type QueueSendsResult } from './pipeline.js';

export interface FanOutFigures {
  fanoutSparse: FanOutBenchResult;
  fanoutDense: FanOutBenchResult;
  fanoutDenseWhole: FanOutBenchResult;
  fanoutSparse100k: FanOutBenchResult;
  fanoutBefore: { workspaces: number; messages: number; seconds: number };
  fanoutFloor: QueueSendsResult;
  fanoutSender: { sdk: QueueSendsResult; ours: QueueSendsResult; cpuRatio: number };
  fanoutDenseOverFloor: number;
}

async function fresh<T>(bench: (connectionString: string) => Promise<T>): Promise<T> {
  const own = await startAzurite();
  try {
    return await bench(own.connectionString);
  } finally {
    await own.stop();
  }
}

/**
 * One tick: 1% of the workspaces with changes (sparse), all of them (dense; first as shards were
 * expanded before pages), and 1% of 100,000; then the queue's floor for the dense tick (as many bare
 * sends, no fan-out around them) and the sender's own cost, the SDK's and ours (a quarter of the tick's messages).
 */
async function figures(workspaces: number): Promise<FanOutFigures> {
  const fanoutSparse = await fresh((cs) => benchFanOut(cs, workspaces, workspaces / 100, 'bench-fanout-sparse'));
  const fanoutDenseWhole = await fresh((cs) => benchFanOut(cs, workspaces, workspaces, 'bench-fanout-dense-whole', 'whole'));
  const fanoutDense = await fresh((cs) => benchFanOut(cs, workspaces, workspaces, 'bench-fanout-dense'));
  const fanoutSparse100k = await fresh((cs) => benchFanOut(cs, 100_000, 1_000, 'bench-fanout-sparse100k'));
  const fanoutBefore = await fresh((cs) => benchFullFanOut(cs, workspaces));
  const fanoutFloor = await fresh((cs) => benchQueueSends(cs, fanoutDense.messages, 'messageSender', 'bench-floor'));
  const sdk = await fresh((cs) => benchQueueSends(cs, fanoutDense.messages / 4, 'QueueClient.sendMessage', 'bench-sender-sdk'));
  const ours = await fresh((cs) => benchQueueSends(cs, fanoutDense.messages / 4, 'messageSender', 'bench-sender-ours'));
  return {
    fanoutSparse, fanoutDense, fanoutDenseWhole, fanoutSparse100k, fanoutBefore, fanoutFloor,
    fanoutSender: { sdk, ours, cpuRatio: ours.cpuMsPerMessage / sdk.cpuMsPerMessage },
    fanoutDenseOverFloor: fanoutDense.seconds / fanoutFloor.seconds,
  };
}

/** The figures for `workspaces` workspaces, measured in a new process. */
export function benchFanOutFigures(workspaces: number): Promise<FanOutFigures> {
  const child = fork(fileURLToPath(import.meta.url), ['--child', String(workspaces)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as FanOutFigures));
    child.once('exit', (code) => code !== 0 && reject(new Error(`fan-out child exited with ${code}`)));
  });
}

if (process.argv[2] === '--child') {
  figures(Number(process.argv[3])).then(
    (r) => process.send!(r, () => process.exit(0)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
