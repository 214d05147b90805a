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
  refuseTraversal(decoded, decoded);
  // Double-encoded traversal (`%252e%252e%252f`): a server, proxy or client that decodes once more
  // would see `../`. The stored path keeps its literal `%`, but such names are refused outright.
  if (decoded.includes('%')) {
    let again: string | undefined;
    try {
      again = decodeURIComponent(decoded);
    } catch {
      /* a literal % that is not an escape is fine */
    }
    if (again !== undefined && again !== decoded) {
      try {
        refuseTraversal(again, decoded);
      } catch (e) {
        throw bad(`Invalid path '${decoded}': encoded traversal is not allowed (${(e as Error).message.replace(/^Invalid path[^:]*: /, '')})`);
      }
    }
  }
  if (decoded.length > 1024) throw bad('Invalid path: longer than 1024 characters');
  return decoded;
}

/** Throws for NUL, backslashes, absolute paths, drive letters, dot- and empty segments. */
function refuseTraversal(p: string, shown: string): void {
  if (p.includes('\0')) throw bad('Invalid path: NUL byte');
  if (p.includes('\\')) throw bad(`Invalid path '${shown}': backslashes are not allowed`);
  if (p.startsWith('/')) throw bad(`Invalid path '${shown}': absolute paths are not allowed`);
  if (/^[A-Za-z]:/.test(p)) throw bad(`Invalid path '${shown}': drive letters are not allowed`);
  const segments = p.split('/');
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i];
    if (s === '..' || s === '.') throw bad(`Invalid path '${shown}': '.' and '..' segments are not allowed`);
    if (s === '' && i < segments.length - 1) throw bad(`Invalid path '${shown}': empty path segment`);
  }
}
