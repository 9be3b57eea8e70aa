// Local stand-in for the Azure Functions host (Core Tools' `func start`), in-process (dev tool only).
//
// Imports the app's entry module with `@azure/functions-core` provided (see functions-core.ts), so it
// runs exactly the functions `func start` would, then serves:
//   HTTP triggers   http://127.0.0.1:<port>/<routePrefix>/<route> (routePrefix "api" unless host.json says
//                   otherwise); `{p}`, `{p?}`, `{p:int}`, `{*rest}` templates. authLevel is accepted and
//                   NOT enforced (Core Tools does not enforce keys either).
//   Admin           POST /admin/functions/{name} {"input": "..."} → 202 (like Core Tools);
//                   GET /admin/functions (metadata), GET /admin/host/status.
//   Timer triggers  NCRONTAB (UTC), `%SETTING%` schedules, runOnStartup, no overlapping runs.
//   Queue triggers  @azure/storage-queue polling with host.json `extensions.queues` semantics,
//                   poison queue `<queue>-poison` after maxDequeueCount.
// Queue output bindings (return / extraOutputs of type `queue`) are written after a successful run;
// other input/output binding types are not supported (a warning is logged at start-up).
//
// This module composes the pieces in host/ and owns the start/stop order:
//   host-json.ts  host.json → settings        registration.ts  the entry's functions and hooks
//   settings.ts   app settings, %NAME%        invocation.ts    one invocation (context, hooks, outputs)
//   routes.ts     route templates             http.ts          the HTTP server; admin.ts /admin/*
//   timer.ts      timer triggers              queue.ts         queue pollers; queue-storage.ts clients
//   logging.ts    log records and sinks       idle.ts          whenIdle()
import type { CoreFunctionMetadata } from './functions-core.js';
import { handleAdmin } from './host/admin.js';
import { HostError } from './host/errors.js';
import { readHostConfig, type HostJson } from './host/host-json.js';
import { httpRoutes, startHttpServer } from './host/http.js';
import { whenIdle, type WhenIdleOptions } from './host/idle.js';
import { Invoker } from './host/invocation.js';
import { defaultSink, errorText, hostLogs, type LogSink } from './host/logging.js';
import { createPollers, wakePollers } from './host/queue.js';
import { queueInput, QueueStorage } from './host/queue-storage.js';
import { loadApp, warnUnsupported } from './host/registration.js';
import { appSettings } from './host/settings.js';
import { createTimers } from './host/timer.js';

export type { CoreFunctionMetadata, BindingMetadata } from './functions-core.js';
export type { HostJson, QueuesHostJson } from './host/host-json.js';
export type { LogLevel, LogRecord, LogSink } from './host/logging.js';
export type { WhenIdleOptions } from './host/idle.js';
export { parseTimeSpan } from './host/host-json.js';
export { compileRoute } from './host/routes.js';
export { describeFunctions } from './host/describe.js';

export interface HostOptions {
  /** Path or file URL of the module that registers the functions (the app's `main`). */
  entry: string;
  /** Default 7071; 0 picks a free port. Always bound to 127.0.0.1. */
  port?: number;
  /**
   * App settings: binding `connection` names and `%NAME%` expressions are looked up here first,
   * then in process.env. (The app's own config reads process.env; start.ts copies settings there.)
   */
  settings?: Record<string, string | undefined>;
  /** host.json path or contents; default `./host.json` if it exists. */
  hostJson?: string | HostJson;
  /** Log sink; default: one JSON object per line on stdout. */
  log?: LogSink;
  /** Start timer schedules (default true). runOnStartup still applies when false. */
  timers?: boolean;
  /** Start queue listeners (default true). */
  queues?: boolean;
  /** How long stop() waits for running invocations (default 10 s). */
  shutdownGraceMs?: number;
}

export interface Host {
  /** e.g. http://127.0.0.1:7071 */
  readonly url: string;
  readonly port: number;
  /** What the entry registered, as `@azure/functions` describes it to the worker. */
  readonly functions: readonly CoreFunctionMetadata[];
  /**
   * Runs a non-HTTP function now (like Core Tools' POST /admin/functions/{name}) and resolves with
   * its result (rejects with its error). Queue functions get `input` as the message text.
   */
  invoke(name: string, input?: string): Promise<unknown>;
  /** Resolves once every polled queue is empty (visible or not) and no invocation is running. */
  whenIdle(options?: WhenIdleOptions): Promise<void>;
  stop(): Promise<void>;
}

export async function startHost(options: HostOptions): Promise<Host> {
  const sink = options.log ?? defaultSink;
  const { log, systemLog } = hostLogs(sink);
  const settings = appSettings(options.settings);
  const config = readHostConfig(options.hostJson);
  const app = await loadApp(options.entry, systemLog);
  const { functions, hooks, appHookData } = app;

  let stopping = false;
  const isStopping = (): boolean => stopping;
  const storage = new QueueStorage(settings, config.queues);
  const invoker = new Invoker({ app, config, sink, log, writeOutputs: (fn, context, result) => storage.writeOutputs(fn, context, result) });
  const run = invoker.run.bind(invoker);
  const timers = createTimers(functions.values(), settings, { run, isStopping });
  const pollers = createPollers(functions.values(), settings, {
    config: config.queues,
    storage,
    log,
    run,
    isStopping,
    notifyActivity: () => invoker.notifyActivity(),
  });
  const routes = httpRoutes(app);
  warnUnsupported(functions.values(), log);

  const { server, port } = await startHttpServer(options.port ?? 7071, routes, {
    app,
    routePrefix: config.routePrefix,
    log,
    run,
    admin: (req, res, pathname) => handleAdmin(req, res, pathname, { app, isStopping, invoke }),
  });
  const url = `http://127.0.0.1:${port}`;

  async function invoke(name: string, input?: string): Promise<unknown> {
    const fn = functions.get(name);
    if (!fn) throw new HostError(`no function named "${name}" (registered: ${[...functions.keys()].join(', ')})`);
    try {
      if (fn.trigger.type === 'httpTrigger') throw new HostError(`"${name}" is an HTTP function; call ${url}/${config.routePrefix}/... instead`);
      if (fn.trigger.type === 'timerTrigger') {
        return await timers.find((t) => t.fn === fn)!.fire('This function was programmatically called via the host APIs.');
      }
      const text = input ?? '';
      return await run({
        fn,
        input: fn.trigger.type === 'queueTrigger' ? queueInput(text) : input,
        reason: 'This function was programmatically called via the host APIs.',
        triggerMetadata: fn.trigger.type === 'queueTrigger' ? { queueTrigger: text, dequeueCount: 1 } : undefined,
      });
    } finally {
      // A function run by hand may have queued work: poll now rather than after the back-off.
      wakePollers(pollers);
    }
  }

  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      for (const t of timers) if (t.handle) clearTimeout(t.handle);
      wakePollers(pollers);
      await Promise.all(pollers.map((p) => p.loop));
      const graceUntil = Date.now() + (options.shutdownGraceMs ?? 10_000);
      while ((invoker.inFlight > 0 || pollers.some((p) => p.active > 0)) && Date.now() < graceUntil) {
        await new Promise((r) => setTimeout(r, 25));
      }
      // Anything still running is abandoned: make its messages visible again for the next start.
      for (const p of pollers) {
        for (const [id, { popReceipt }] of p.leased) {
          await p.queue.updateMessage(id, popReceipt, undefined, 0).catch(() => undefined);
        }
      }
      for (const hook of hooks('appTerminate')) {
        try {
          await hook({ hookData: {}, appHookData });
        } catch (e) {
          log('error', `appTerminate hook failed: ${errorText(e)}`);
        }
      }
      server.closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    })();
    return stopped;
  }

  try {
    for (const hook of hooks('appStart')) await hook({ hookData: {}, appHookData });
  } catch (e) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw e;
  }
  if (options.queues !== false) for (const p of pollers) p.start();
  for (const t of timers) {
    if (t.fn.trigger.runOnStartup) t.fire('Timer fired on startup (runOnStartup)').catch(() => undefined);
    if (options.timers !== false) t.arm();
  }

  return {
    url,
    port,
    functions: [...functions.values()].map((f) => f.metadata),
    invoke,
    whenIdle: (opts) => whenIdle(invoker, pollers, opts),
    stop,
  };
}
