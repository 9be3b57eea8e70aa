// Timer triggers: NCRONTAB schedules (UTC, `%SETTING%` allowed) armed with setTimeout, the timer
// input the library expects, and no overlapping runs of one function.
import { parseNcrontab, type CronSchedule } from '../ncrontab.js';
import { HostError } from './errors.js';
import type { InvocationRequest } from './invocation.js';
import type { Registered } from './registration.js';
import type { AppSettings } from './settings.js';

export interface TimerDeps {
  run(request: InvocationRequest): Promise<unknown>;
  isStopping(): boolean;
}

export class Timer {
  handle?: NodeJS.Timeout;
  private last?: Date;
  private running?: Promise<unknown>;

  constructor(
    readonly fn: Registered,
    private readonly schedule: CronSchedule,
    private readonly deps: TimerDeps,
  ) {}

  /** Runs the function now; `scheduledFor` is the occurrence it stands for (isPastDue). */
  fire(reason: string, scheduledFor?: Date): Promise<unknown> {
    const run = this.deps.run({ fn: this.fn, input: this.input(scheduledFor), reason }).finally(() => {
      this.last = new Date();
      if (this.running === run) this.running = undefined;
    });
    this.running = run;
    return run;
  }

  /** Waits for the next occurrence, fires, and arms again (until the host stops). */
  arm(): void {
    const { isStopping } = this.deps;
    if (isStopping()) return;
    const due = this.schedule.next(new Date());
    // setTimeout fires early by a few ms at most; re-arm until the due time has passed.
    const wait = Math.min(Math.max(due.getTime() - Date.now(), 0), 2 ** 31 - 1);
    this.handle = setTimeout(async () => {
      if (isStopping()) return;
      if (Date.now() < due.getTime()) return this.arm();
      // No overlapping runs: a still-running previous invocation makes this occurrence wait.
      if (this.running) await this.running.catch(() => undefined);
      if (isStopping()) return;
      await this.fire(`Timer fired at ${new Date().toISOString()}`, due).catch(() => undefined);
      this.arm();
    }, wait);
  }

  private input(scheduledFor: Date | undefined): unknown {
    const now = new Date();
    return {
      isPastDue: scheduledFor !== undefined && now.getTime() - scheduledFor.getTime() > 1000,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: (this.last ?? new Date(0)).toISOString(),
        next: this.schedule.next(now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
  }
}

/** One Timer per timer-triggered function; throws on a schedule that does not parse. */
export function createTimers(functions: Iterable<Registered>, settings: AppSettings, deps: TimerDeps): Timer[] {
  const timers: Timer[] = [];
  for (const fn of functions) {
    if (fn.trigger.type !== 'timerTrigger') continue;
    const expression = settings.resolve(String(fn.trigger.schedule), `${fn.metadata.name}.schedule`);
    let schedule: CronSchedule;
    try {
      schedule = parseNcrontab(expression);
    } catch (e) {
      throw new HostError(`function ${fn.metadata.name}: ${(e as Error).message}`);
    }
    timers.push(new Timer(fn, schedule, deps));
  }
  return timers;
}
