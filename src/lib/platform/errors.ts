// Errors carry a stable machine-readable code and a sentence a workspace owner or operator can act on.
// UserError: the request or the customer's set-up is wrong (4xx, no retry helps).
// SystemError: something on our side failed (retrying may help).

/** One entry of an error's `details` list: what is wrong (and where: a body field, a header, the SAS). */
export interface ErrorDetail {
  path?: string;
  message: string;
  /** sas_missing_permissions: the permission the SAS lacks. */
  permission?: string;
  /** Refusals from the customer's storage account: its answer. */
  storageStatus?: number;
  storageCode?: string;
}

export class UserError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly details: ErrorDetail[] = [],
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export class SystemError extends Error {
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SystemError';
  }
}

/** Startup configuration error: names the setting. */
export class ConfigError extends Error {
  constructor(readonly setting: string, message: string) {
    super(`configuration: ${setting}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** A write lost an optimistic-concurrency race (ETag mismatch or entity already exists). */
export function isConflict(e: unknown): boolean {
  const status = (e as { statusCode?: number })?.statusCode;
  return status === 409 || status === 412;
}

export function isNotFound(e: unknown): boolean {
  return (e as { statusCode?: number })?.statusCode === 404;
}
