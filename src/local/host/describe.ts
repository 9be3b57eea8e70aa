// The function list `func start` prints at start-up, from the metadata a Host reports.
import type { CoreFunctionMetadata } from '../functions-core.js';

/** One line per function, like the list `func start` prints. */
export function describeFunctions(host: { readonly url: string; readonly functions: readonly CoreFunctionMetadata[] }, routePrefix = 'api'): string {
  return host.functions
    .map((f) => {
      const trigger = Object.values(f.bindings).find((b) => b.direction === 'in' && /Trigger$/.test(b.type));
      if (trigger?.type === 'httpTrigger') {
        const methods = ((trigger.methods as string[] | undefined) ?? []).join(',');
        const route = (trigger.route as string | undefined) || f.name;
        return `  ${f.name}: [${methods}] ${host.url}/${routePrefix}/${route}`;
      }
      if (trigger?.type === 'timerTrigger') return `  ${f.name}: timerTrigger (${String(trigger.schedule)})`;
      if (trigger?.type === 'queueTrigger') return `  ${f.name}: queueTrigger (${String(trigger.queueName)})`;
      return `  ${f.name}: ${trigger?.type ?? 'unknown'}`;
    })
    .join('\n');
}
