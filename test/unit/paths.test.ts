/**
 * decodeRepositoryPath: the one place a request path becomes a repository path. Every spelling
 * of traversal is a 400; ordinary names (spaces, unicode, dots inside names) pass unchanged.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRepositoryPath } from '../../src/http/paths.js';
import { AppError } from '../../src/errors.js';

function refused(raw: string, pattern?: RegExp): void {
  assert.throws(
    () => decodeRepositoryPath(raw),
    (e: unknown) => {
      assert.ok(e instanceof AppError, `expected AppError for ${JSON.stringify(raw)}, got ${String(e)}`);
      assert.equal(e.status, 400, `status for ${JSON.stringify(raw)}`);
      if (pattern) assert.match(e.message, pattern);
      return true;
    },
    `${JSON.stringify(raw)} must be refused`,
  );
}

describe('decodeRepositoryPath accepts', () => {
  const ok: Array<[string, string]> = [
    ['', ''],
    ['file.txt', 'file.txt'],
    ['a/b/c.tar.gz', 'a/b/c.tar.gz'],
    ['dir/', 'dir/'],
    ['dir/sub/', 'dir/sub/'],
    ['with%20space.txt', 'with space.txt'],
    ['caf%C3%A9/na%C3%AFve.txt', 'café/naïve.txt'],
    ['%40scope%2Fpkg', '@scope/pkg'],
    ['...', '...'],
    ['a..b/..c/d..', 'a..b/..c/d..'],
    ['.hidden/.config', '.hidden/.config'],
    ['100%25', '100%'],
    ['a%2525b', 'a%25b'],
    ['x'.repeat(1024), 'x'.repeat(1024)],
  ];
  for (const [raw, expected] of ok) {
    it(`${JSON.stringify(raw.length > 40 ? raw.slice(0, 20) + '…' : raw)} → ${JSON.stringify(expected.length > 40 ? '(1024 chars)' : expected)}`, () => {
      assert.equal(decodeRepositoryPath(raw), expected);
    });
  }
});

describe('decodeRepositoryPath refuses', () => {
  const traversal: Array<[string, string]> = [
    ['..', 'bare dot-dot'],
    ['../etc/passwd', 'leading dot-dot'],
    ['a/../../etc/passwd', 'dot-dot in the middle'],
    ['a/..', 'trailing dot-dot'],
    ['a/./b', 'dot segment'],
    ['.', 'bare dot'],
    ['%2e%2e/etc/passwd', 'percent-encoded dot-dot'],
    ['%2E%2E/x', 'upper-case percent-encoded dot-dot'],
    ['.%2e/x', 'half-encoded dot-dot'],
    ['a/%2e/b', 'percent-encoded dot'],
    ['%252e%252e/etc/passwd', 'double-encoded dot-dot'],
    ['a/%252E%252e/b', 'double-encoded dot-dot, mixed case'],
    ['%252e/x', 'double-encoded dot'],
    ['%252e%252e%252fescaped.txt', 'double-encoded dot-dot and slash in one segment'],
    ['x/%252E%252E%252F%252E%252E%252Fetc', 'double-encoded, upper case'],
    ['%252e%252e%255cescaped.txt', 'double-encoded dot-dot and backslash'],
    ['..%2fetc%2fpasswd', 'dot-dot with encoded slashes'],
    ['a%2f..%2f..%2fx', 'dot-dot hidden behind encoded slashes'],
  ];
  for (const [raw, what] of traversal) {
    it(`${what}: ${raw}`, () => refused(raw, /not allowed/));
  }

  it('absolute paths, raw or encoded', () => {
    refused('/etc/passwd', /absolute/);
    refused('/', /absolute/);
    refused('%2fetc%2fpasswd', /absolute/);
    refused('%2F', /absolute/);
  });

  it('backslashes, raw or encoded', () => {
    refused('a\\b', /backslash/);
    refused('..\\..\\windows', /backslash/);
    refused('a%5cb', /backslash/);
    refused('%5C..%5Cx', /backslash/);
    refused('a%255cb', /backslash/);
  });

  it('NUL bytes', () => {
    refused('a%00b', /NUL/);
    refused('file.txt%00.png', /NUL/);
    refused('a\0b', /NUL/);
    refused('a%2500b', /NUL/);
  });

  it('drive letters', () => {
    refused('C:/Windows', /drive/);
    refused('c%3a%5cx');
  });

  it('empty segments', () => {
    refused('a//b', /empty/);
    refused('a/%2f/b');
  });

  it('malformed percent-encoding', () => {
    refused('%zz', /malformed/);
    refused('a%2', /malformed/);
    refused('%E0%A4%A', /malformed/);
  });

  it('paths longer than 1024 characters', () => {
    refused('x'.repeat(1025), /1024/);
  });
});
