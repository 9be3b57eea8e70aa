import { describe, expect, it } from 'vitest';
import { parseNcrontab } from '../../src/local/ncrontab.js';

const at = (iso: string) => new Date(iso);
const next = (expr: string, after: string) => parseNcrontab(expr).next(at(after)).toISOString();

describe('parseNcrontab', () => {
  it('every second', () => {
    expect(next('* * * * * *', '2024-01-01T00:00:00.400Z')).toBe('2024-01-01T00:00:01.000Z');
    expect(next('*/1 * * * * *', '2024-01-01T00:00:59.000Z')).toBe('2024-01-01T00:01:00.000Z');
  });

  it('the default export schedule: every 15 minutes on the minute', () => {
    expect(next('0 */15 * * * *', '2024-01-01T10:00:00Z')).toBe('2024-01-01T10:15:00.000Z');
    expect(next('0 */15 * * * *', '2024-01-01T10:44:59Z')).toBe('2024-01-01T10:45:00.000Z');
    expect(next('0 */15 * * * *', '2024-01-01T23:59:00Z')).toBe('2024-01-02T00:00:00.000Z');
  });

  it('every minute', () => {
    expect(next('0 */1 * * * *', '2024-03-31T23:59:30Z')).toBe('2024-04-01T00:00:00.000Z');
  });

  it('lists, ranges and stepped ranges', () => {
    expect(next('5,10 * * * * *', '2024-01-01T00:00:05Z')).toBe('2024-01-01T00:00:10.000Z');
    expect(next('5,10 * * * * *', '2024-01-01T00:00:10Z')).toBe('2024-01-01T00:01:05.000Z');
    expect(next('0 0 9-17 * * *', '2024-01-01T17:00:00Z')).toBe('2024-01-02T09:00:00.000Z');
    expect(next('0 10-40/10 * * * *', '2024-01-01T00:20:00Z')).toBe('2024-01-01T00:30:00.000Z');
    expect(next('0 10-40/10 * * * *', '2024-01-01T00:40:00Z')).toBe('2024-01-01T01:10:00.000Z');
    expect(next('20/20 * * * * *', '2024-01-01T00:00:41Z')).toBe('2024-01-01T00:01:20.000Z');
  });

  it('day of week and month, by number and name; both day fields must match', () => {
    // 2024-01-01 is a Monday.
    expect(next('0 30 9 * * 1-5', '2024-01-05T10:00:00Z')).toBe('2024-01-08T09:30:00.000Z');
    expect(next('0 30 9 * * Mon', '2024-01-01T09:30:00Z')).toBe('2024-01-08T09:30:00.000Z');
    expect(next('0 0 0 1 Jan,Jul *', '2024-01-01T00:00:00Z')).toBe('2024-07-01T00:00:00.000Z');
    // The 13th that is a Friday: September 2024.
    expect(next('0 0 0 13 * 5', '2024-01-01T00:00:00Z')).toBe('2024-09-13T00:00:00.000Z');
    expect(next('0 0 12 29 2 *', '2024-03-01T00:00:00Z')).toBe('2028-02-29T12:00:00.000Z');
  });

  it('five fields are minute-first with second 0', () => {
    expect(next('*/5 * * * *', '2024-01-01T00:01:00Z')).toBe('2024-01-01T00:05:00.000Z');
  });

  it('rejects malformed expressions with a clear message', () => {
    expect(() => parseNcrontab('* * * *')).toThrow(/expected 6 fields/);
    expect(() => parseNcrontab('60 * * * * *')).toThrow(/second 60 is outside 0-59/);
    expect(() => parseNcrontab('*/0 * * * * *')).toThrow(/step "0"/);
    expect(() => parseNcrontab('0 5-1 * * * *')).toThrow(/runs backwards/);
    expect(() => parseNcrontab('0 x * * * *')).toThrow(/minute "x" is not a number/);
    expect(() => parseNcrontab('0 0 0 31 2 *')).toThrow(/never match a real date/);
    expect(() => parseNcrontab('%EXPORT_SCHEDULE%')).toThrow(/ncrontab: invalid schedule/);
  });
});
