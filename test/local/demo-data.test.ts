import { describe, expect, it } from 'vitest';
import { generateDemoData, INGEST_ORDER } from '../../src/local/demo-data.js';
import { parseIngestBody, parseFileTypeToken } from '../../src/lib/source/ingest.js';
import { FILE_TYPES } from '../../src/lib/contract/schemas.js';

describe('demo data', () => {
  it('covers every file type and passes the ingest validation', () => {
    const data = generateDemoData();
    const covered = new Set<string>();
    for (const name of INGEST_ORDER) {
      const fileType = parseFileTypeToken(name);
      covered.add(fileType);
      expect(data[name].length).toBeGreaterThan(0);
      for (let i = 0; i < data[name].length; i += 1000) expect(() => parseIngestBody(fileType, data[name].slice(i, i + 1000))).not.toThrow();
    }
    // Attributes arrive with people records.
    expect(data.people.some((p) => p.attributes && Object.keys(p.attributes as object).length > 0)).toBe(true);
    covered.add('attributes');
    expect([...covered].sort()).toEqual([...FILE_TYPES].sort());
  });
});
