/**
 * parseRange: single `bytes=` ranges as RFC 9110 defines them. Unsatisfiable ranges are a 416
 * carrying `Content-Range: bytes * /size`; malformed or multi-ranges are ignored (whole body).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRange } from '../../src/http/send-content.js';
import { AppError } from '../../src/errors.js';

function unsatisfiable(header: string, size: number): void {
  assert.throws(
    () => parseRange(header, size),
    (e: unknown) => {
      assert.ok(e instanceof AppError, `expected AppError, got ${String(e)}`);
      assert.equal(e.status, 416);
      assert.equal(e.code, 'RANGE_NOT_SATISFIABLE');
      assert.equal(e.headers?.['Content-Range'], `bytes */${size}`);
      return true;
    },
    `${header} on ${size} bytes must be 416`,
  );
}

describe('parseRange satisfiable ranges', () => {
  const cases: Array<[string, number, { start: number; end: number }]> = [
    ['bytes=0-0', 100, { start: 0, end: 0 }],
    ['bytes=0-9', 100, { start: 0, end: 9 }],
    ['bytes=10-19', 100, { start: 10, end: 19 }],
    ['bytes=99-99', 100, { start: 99, end: 99 }],
    ['bytes=90-', 100, { start: 90, end: 99 }],
    ['bytes=0-', 100, { start: 0, end: 99 }],
    ['bytes=-10', 100, { start: 90, end: 99 }],
    ['bytes=-1', 100, { start: 99, end: 99 }],
    ['bytes=-100', 100, { start: 0, end: 99 }],
    ['bytes=-500', 100, { start: 0, end: 99 }],
    ['bytes=50-1000', 100, { start: 50, end: 99 }],
    ['  bytes=1-2  ', 100, { start: 1, end: 2 }],
    ['bytes=0-0', 1, { start: 0, end: 0 }],
    ['bytes=4294967296-4294967297', 2 ** 33, { start: 2 ** 32, end: 2 ** 32 + 1 }],
  ];
  for (const [h, size, expected] of cases) {
    it(`${h.trim()} of ${size} → ${expected.start}-${expected.end}`, () => {
      assert.deepEqual(parseRange(h, size), expected);
    });
  }
});

describe('parseRange ignored headers (serve the whole body)', () => {
  const ignored: Array<[string | undefined, string]> = [
    [undefined, 'no header'],
    ['', 'empty header'],
    ['bytes=-', 'neither end'],
    ['bytes=5-2', 'last before first'],
    ['bytes=0-1,5-6', 'multiple ranges'],
    ['items=0-1', 'another unit'],
    ['bytes=a-b', 'not numbers'],
    ['bytes 0-1', 'no equals sign'],
  ];
  for (const [h, what] of ignored) {
    it(`${what}: ${JSON.stringify(h)}`, () => {
      assert.equal(parseRange(h, 100), null);
    });
  }
});

describe('parseRange unsatisfiable ranges', () => {
  it('first byte at or past the end', () => {
    unsatisfiable('bytes=100-', 100);
    unsatisfiable('bytes=100-200', 100);
    unsatisfiable('bytes=1000-', 100);
  });
  it('zero-length suffix', () => unsatisfiable('bytes=-0', 100));
  it('any range of an empty body', () => {
    unsatisfiable('bytes=0-', 0);
    unsatisfiable('bytes=0-0', 0);
    unsatisfiable('bytes=-5', 0);
  });
});
