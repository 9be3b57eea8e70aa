import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeMessage, queueInput } from '../../../src/local/host/queue-storage.js';

describe('queue message text', () => {
  it('round-trips through base64 and passes through with encoding none', () => {
    const text = '{"workspaceId":"w1","é":1}';
    expect(decodeMessage(encodeMessage(text, 'base64'), 'base64')).toBe(text);
    expect(encodeMessage(text, 'none')).toBe(text);
    expect(decodeMessage(text, 'none')).toBe(text);
  });

  it('rejects text that is not base64 when base64 is expected', () => {
    expect(() => decodeMessage('not base64!', 'base64')).toThrow('local host: message is not valid base64');
  });

  it('hands JSON objects and arrays to the handler parsed, anything else as text', () => {
    expect(queueInput('{"a":1}')).toEqual({ a: 1 });
    expect(queueInput('  [1,2]')).toEqual([1, 2]);
    expect(queueInput('{broken')).toBe('{broken');
    expect(queueInput('42')).toBe('42');
  });
});
