/**
 * Strict content type validation (Nexus's `storage.strictContentTypeValidation`): the first bytes
 * of what is stored must fit the type its file name promises, so an HTML error or login page
 * saved as `lib.jar`, or a truncated/garbled archive, is refused instead of being served for good.
 *
 * Deliberately conservative: only types with an unmistakable signature are checked (archives,
 * compressed files, images, PDF, RPM, JSON, XML); anything else — and a name without a known
 * type — passes. Formats store their own documents under names without an extension.
 */
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import mime from 'mime-types';
import { AppError } from '../errors.js';

/** Bytes inspected: enough for every signature below, tar's `ustar` at offset 257 included. */
const HEAD_BYTES = 512;

type Check = (head: Buffer) => boolean;

const starts =
  (...sigs: number[][]): Check =>
  (h) =>
    sigs.some((sig) => sig.length <= h.length && sig.every((b, i) => h[i] === b));

const ZIP = starts([0x50, 0x4b, 0x03, 0x04], [0x50, 0x4b, 0x05, 0x06], [0x50, 0x4b, 0x07, 0x08]);
const GZIP = starts([0x1f, 0x8b]);

/** First byte after a UTF-8 BOM and whitespace, or -1. */
function firstSignificant(h: Buffer): number {
  let i = h[0] === 0xef && h[1] === 0xbb && h[2] === 0xbf ? 3 : 0;
  while (i < h.length && (h[i] === 0x20 || h[i] === 0x09 || h[i] === 0x0a || h[i] === 0x0d)) i++;
  return i < h.length ? h[i] : -1;
}

const JSON_START = new Set([...'{["-0123456789tfn'].map((c) => c.charCodeAt(0)));
const isJson: Check = (h) => {
  const c = firstSignificant(h);
  return c === -1 || JSON_START.has(c);
};
const isXml: Check = (h) => {
  const c = firstSignificant(h);
  return c === -1 || c === 0x3c; // '<'
};
// A short tar (under 262 bytes) cannot hold a complete header: only longer ones are checked.
const isTar: Check = (h) => h.length < 262 || h.subarray(257, 262).toString('latin1') === 'ustar';

const CHECKS: Record<string, Check> = {
  'application/zip': ZIP,
  'application/java-archive': ZIP,
  'application/gzip': GZIP,
  'application/x-gzip': GZIP,
  'application/x-tar': isTar,
  'application/x-bzip2': starts([0x42, 0x5a, 0x68]),
  'application/x-xz': starts([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
  'application/x-redhat-package-manager': starts([0xed, 0xab, 0xee, 0xdb]),
  'application/pdf': starts([0x25, 0x50, 0x44, 0x46, 0x2d]),
  'image/png': starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  'image/jpeg': starts([0xff, 0xd8, 0xff]),
  'image/gif': starts([0x47, 0x49, 0x46, 0x38]),
  'application/json': isJson,
  'application/xml': isXml,
  'text/xml': isXml,
};

/** Archives some ecosystems name with their own extensions (mime-types does not know them). */
const EXTRA: Record<string, string> = {
  '.whl': 'application/zip',
  '.egg': 'application/zip',
  '.nupkg': 'application/zip',
  '.aar': 'application/zip',
  '.tgz': 'application/gzip',
  '.pom': 'application/xml',
};

/** The type a repository path promises by its file name, when it is one we can check. */
export function expectedType(repoPath: string): string | null {
  const base = path.posix.basename(repoPath).toLowerCase();
  const t = EXTRA[path.posix.extname(base)] ?? mime.lookup(base);
  return t && CHECKS[t] ? t : null;
}

/** A rough name for what the bytes look like, for the error message. */
function detect(h: Buffer): string {
  for (const [type, check] of Object.entries(CHECKS)) {
    if (type.startsWith('application/json') || type.endsWith('xml') || type === 'application/x-tar') continue;
    if (check(h) && h.length > 0) return type;
  }
  const c = firstSignificant(h);
  if (c === 0x3c) return /^\s*<(!doctype html|html)/i.test(h.toString('latin1', 0, 64).replace(/^\uFEFF/, '')) ? 'text/html' : 'application/xml';
  if (c !== -1 && JSON_START.has(c) && (c === 0x7b || c === 0x5b)) return 'application/json';
  return h.includes(0) ? 'application/octet-stream' : 'text/plain';
}

/** Null when `head` (the first bytes, or the whole body if shorter) fits `repoPath`; else the reason. */
export function contentTypeMismatch(repoPath: string, head: Buffer): string | null {
  const expected = expectedType(repoPath);
  if (!expected || head.length === 0) return null;
  if (CHECKS[expected](head)) return null;
  return `Detected content type [${detect(head)}], but expected [${expected}]: ${repoPath}`;
}

/**
 * A pass-through that holds back the first HEAD_BYTES and checks them against the path's expected
 * type. When they do not fit nothing is passed on, and the stream fails: at once (`drain` false:
 * an upstream we may hang up on), or after the rest of the body was read and dropped (`drain`
 * true: an uploading client then gets the 400 instead of a reset connection).
 * Null when the path promises nothing checkable (no stream stage is added then).
 */
export interface GuardOptions {
  drain?: boolean;
  /** Builds the refusal (default: a 400). */
  error?: (message: string) => Error;
  /** Called once the first bytes were judged: null when they fit, else the refusal. */
  onDecision?: (refusal: Error | null) => void;
}

export function contentTypeGuard(repoPath: string, opts: GuardOptions = {}): Transform | null {
  if (!expectedType(repoPath)) return null;
  const error = opts.error ?? ((m: string) => new AppError('BAD_REQUEST', m));
  let head: Buffer[] | null = [];
  let held = 0;
  let refused: Error | null = null;
  const release = (self: Transform): Error | null => {
    const h = Buffer.concat(head!);
    head = null;
    const why = contentTypeMismatch(repoPath, h);
    if (why) refused = error(why);
    opts.onDecision?.(refused);
    if (refused) return refused;
    if (h.length) self.push(h);
    return null;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      if (refused) return cb(); // draining
      if (!head) return cb(null, chunk);
      head.push(chunk);
      held += chunk.length;
      if (held < HEAD_BYTES) return cb();
      const e = release(this);
      cb(e && !opts.drain ? e : null);
    },
    flush(cb) {
      cb(head ? release(this) : refused);
    },
  });
}
