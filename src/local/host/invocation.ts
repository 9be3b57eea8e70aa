// One invocation as the worker runs it, whatever the trigger: context, preInvocation/postInvocation
// and log hooks, the handler, queue outputs, functionTimeout and the host's Executing/Executed lines.
// Also counts what is in flight, for whenIdle() and stop().
import { randomUUID } from 'node:crypto';
import { formatWithOptions } from 'node:util';
import type { CoreHandler, CoreLogLevel } from '../functions-core.js';
import type { HostConfig } from './host-json.js';
import { errorText, LEVELS, structured, type HostLog, type LogSink } from './logging.js';
import type { InvocationContextLike, Registered, RegisteredApp } from './registration.js';

export interface InvocationRequest {
  fn: Registered;
  input: unknown;
  triggerMetadata?: Record<string, unknown>;
  reason: string;
}

export interface InvokerDeps {
  app: RegisteredApp;
  config: HostConfig;
  sink: LogSink;
  log: HostLog;
  /** Output bindings written after the handler succeeded. */
  writeOutputs(fn: Registered, context: InvocationContextLike, result: unknown): Promise<void>;
}

export class Invoker {
  /** Invocations started and not yet finished. */
  inFlight = 0;
  private readonly idleWaiters = new Set<() => void>();

  constructor(private readonly deps: InvokerDeps) {}

  /** Wakes whoever waits in nextActivity(): an invocation or a message finished. */
  notifyActivity(): void {
    for (const w of this.idleWaiters) w();
  }

  /** Resolves at the next notifyActivity() or after `ms`, whichever comes first. */
  nextActivity(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      const waiters = this.idleWaiters;
      function done(): void {
        clearTimeout(t);
        waiters.delete(done);
        resolve();
      }
      waiters.add(done);
    });
  }

  /** Runs one invocation: context, hooks, handler, queue outputs, host log lines. Throws the handler's error. */
  async run({ fn, input, triggerMetadata, reason }: InvocationRequest): Promise<unknown> {
    const { app, config, sink, log } = this.deps;
    const { hooks, appHookData } = app;
    const invocationId = randomUUID();
    const functionName = fn.metadata.name;
    this.inFlight++;
    const started = Date.now();
    const logHooks = hooks('log');
    const context = new app.lib.InvocationContext({
      invocationId,
      functionName,
      triggerMetadata,
      options: {
        trigger: fn.trigger,
        return: fn.metadata.bindings.$return,
        extraInputs: [],
        extraOutputs: Object.entries(fn.metadata.bindings)
          .filter(([n, b]) => n !== '$return' && b.direction === 'out')
          .map(([name, b]) => ({ ...b, name })),
      },
      logHandler: (level: CoreLogLevel, ...args: unknown[]) => {
        let lvl = level;
        // One line per record: objects are printed without line breaks.
        let message = formatWithOptions({ breakLength: Infinity }, ...args);
        for (const hook of logHooks) {
          const hookContext: Record<string, unknown> = { level: lvl, message, category: 'user', invocationContext: context, hookData: {}, appHookData };
          try {
            hook(hookContext);
            lvl = hookContext.level as CoreLogLevel;
            message = hookContext.message as string;
          } catch (e) {
            log('error', `log hook failed: ${errorText(e)}`, { function: functionName, invocationId });
          }
        }
        const mapped = LEVELS[lvl];
        if (mapped) sink({ timestamp: new Date().toISOString(), level: mapped, category: 'user', function: functionName, invocationId, ...structured(message) });
      },
    });
    log('info', `Executing '${functionName}' (Reason='${reason}', Id=${invocationId})`, { function: functionName, invocationId });
    const timeout =
      config.functionTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            log('error', `Timeout value of ${config.hostJson.functionTimeout} exceeded by function '${functionName}' (Id: ${invocationId}); the real host would abandon it and restart`, { function: functionName, invocationId });
          }, config.functionTimeoutMs);
    timeout?.unref();
    try {
      const invocationHookData: Record<string, unknown> = {};
      const pre = { hookData: invocationHookData, appHookData, invocationContext: context, inputs: [input], functionCallback: fn.handler as unknown };
      for (const hook of hooks('preInvocation')) await hook(pre);
      let result: unknown;
      let error: unknown;
      try {
        result = await (pre.functionCallback as CoreHandler)(pre.inputs[0], context);
      } catch (e) {
        error = e;
      }
      const postHooks = hooks('postInvocation');
      if (postHooks.length) {
        const post = { hookData: invocationHookData, appHookData, invocationContext: context, inputs: pre.inputs, result, error };
        for (const hook of postHooks) await hook(post);
        result = post.result;
        error = post.error;
      }
      if (error !== undefined) throw error;
      await this.deps.writeOutputs(fn, context, result);
      log('info', `Executed '${functionName}' (Succeeded, Id=${invocationId}, Duration=${Date.now() - started}ms)`, { function: functionName, invocationId });
      return result;
    } catch (e) {
      log('error', `Executed '${functionName}' (Failed, Id=${invocationId}, Duration=${Date.now() - started}ms)\n${errorText(e)}`, { function: functionName, invocationId });
      throw e;
    } finally {
      if (timeout) clearTimeout(timeout);
      this.inFlight--;
      this.notifyActivity();
    }
  }
}
