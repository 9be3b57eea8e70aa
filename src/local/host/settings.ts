// App settings as bindings see them: `connection` names and `%NAME%` expressions are looked up in the
// host's settings first, then in process.env (the Functions convention).
import { HostError } from './errors.js';

export interface AppSettings {
  get(name: string): string | undefined;
  /** Replaces every `%NAME%` in a binding value; `what` names the binding property in the error. */
  resolve(value: string, what: string): string;
}

export function appSettings(settings: Record<string, string | undefined> | undefined): AppSettings {
  const get = (name: string): string | undefined => settings?.[name] ?? process.env[name];
  const resolve = (value: string, what: string): string =>
    value.replace(/%([^%]+)%/g, (_, name: string) => {
      const v = get(name);
      if (v === undefined || v === '') throw new HostError(`${what} uses %${name}% but app setting ${name} is not set`);
      return v;
    });
  return { get, resolve };
}
