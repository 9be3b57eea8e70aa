// The host's own failures (configuration, settings, ports), told apart from the app's errors: a
// queue message that fails with one of these failed before the function ran.
export class HostError extends Error {
  constructor(message: string) {
    super(`local host: ${message}`);
    this.name = 'HostError';
  }
}
