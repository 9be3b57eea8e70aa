// How numbers and times read on the page: the CLI's words (3m05s, 1,234, "2 files"), plus the page's own.
import { count, duration as cliDuration, plural } from '../cli/format.js';

export { count, plural };

export const duration = (seconds: number | null | undefined): string => (seconds === null || seconds === undefined ? '–' : cliDuration(seconds));

/** 2026-12-01 14:05:09 UTC, or a dash. */
export const time = (iso: string | null | undefined): string => (iso ? `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC` : '–');

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
