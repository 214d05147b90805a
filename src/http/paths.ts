import { AppError } from '../errors.js';

const bad = (msg: string) => new AppError('BAD_REQUEST', msg);

/**
 * Turns the raw (still percent-encoded) path after `/repository/<name>/` into a repository path.
 * Refuses traversal in every spelling: `..` or `.` segments (also when percent-encoded, once or
 * as the result of decoding), backslashes, NUL, absolute paths (`//x`, `/x` after decoding) and
 * malformed escapes. Repository paths are database keys, never filesystem paths, so this is
 * defence in depth as much as it is a clear 400 for clients.
 */
export function decodeRepositoryPath(raw: string): string {
  if (raw.startsWith('/')) throw bad(`Invalid path '${raw}': absolute paths are not allowed`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    throw bad(`Invalid path '${raw}': malformed percent-encoding`);
  }
  if (decoded.includes('\0')) throw bad('Invalid path: NUL byte');
  if (decoded.includes('\\')) throw bad(`Invalid path '${decoded}': backslashes are not allowed`);
  if (decoded.startsWith('/')) throw bad(`Invalid path '${decoded}': absolute paths are not allowed`);
  if (/^[A-Za-z]:/.test(decoded)) throw bad(`Invalid path '${decoded}': drive letters are not allowed`);
  const segments = decoded.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '..' || s === '.') throw bad(`Invalid path '${decoded}': '.' and '..' segments are not allowed`);
    if (s === '' && i < segments.length - 1) throw bad(`Invalid path '${decoded}': empty path segment`);
    // A segment that still decodes to a dot-segment was double-encoded: refuse it as well.
    if (/%2e/i.test(s)) {
      let again = s;
      try {
        again = decodeURIComponent(s);
      } catch {
        /* literal % is fine */
      }
      if (again === '..' || again === '.') throw bad(`Invalid path '${decoded}': encoded dot-segments are not allowed`);
    }
  }
  if (decoded.length > 1024) throw bad('Invalid path: longer than 1024 characters');
  return decoded;
}
