/**
 * Domain errors. Code throws these; exactly one renderer per listener turns them into the
 * wire format (plain/JSON on the main listener, a format's own shape where it asks for one).
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'CONFLICT'
  | 'WRITE_POLICY'
  | 'PRECONDITION_FAILED'
  | 'PAYLOAD_TOO_LARGE'
  | 'RANGE_NOT_SATISFIABLE'
  | 'DIGEST_INVALID'
  | 'SIZE_INVALID'
  | 'UNSUPPORTED'
  | 'OFFLINE'
  | 'BAD_GATEWAY'
  | 'UPSTREAM_TIMEOUT'
  | 'INSUFFICIENT_STORAGE'
  | 'INTERNAL';

const STATUS: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  METHOD_NOT_ALLOWED: 405,
  CONFLICT: 409,
  WRITE_POLICY: 400,
  PRECONDITION_FAILED: 412,
  PAYLOAD_TOO_LARGE: 413,
  RANGE_NOT_SATISFIABLE: 416,
  DIGEST_INVALID: 400,
  SIZE_INVALID: 400,
  UNSUPPORTED: 415,
  OFFLINE: 503,
  BAD_GATEWAY: 502,
  UPSTREAM_TIMEOUT: 504,
  INSUFFICIENT_STORAGE: 507,
  INTERNAL: 500,
};

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra fields a renderer may expose (e.g. the field name of a validation error). */
  readonly detail?: Record<string, unknown>;
  /** Extra response headers (e.g. WWW-Authenticate, Content-Range). */
  readonly headers?: Record<string, string>;

  constructor(code: ErrorCode, message: string, opts: { status?: number; detail?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = opts.status ?? STATUS[code];
    this.detail = opts.detail;
    this.headers = opts.headers;
  }
}

export const badRequest = (message: string, detail?: Record<string, unknown>) => new AppError('BAD_REQUEST', message, { detail });
export const notFound = (message = 'Not found') => new AppError('NOT_FOUND', message);
export const conflict = (message: string) => new AppError('CONFLICT', message);
export const forbidden = (message = 'Forbidden') => new AppError('FORBIDDEN', message);

/** errno codes, SQLite and PostgreSQL (53100 disk_full) codes that mean the disk or a quota is full. */
const OUT_OF_SPACE = new Set(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100']);

/**
 * A full disk or quota (from the filesystem, SQLite or PostgreSQL, also as the cause of another
 * error) as a 507 the client can read; null for any other error. Not the client's fault, and not
 * an internal error either: freeing space (deleting content, GC) fixes it.
 */
export function outOfSpace(e: unknown): AppError | null {
  for (let cur = e, depth = 0; cur && depth < 4; cur = (cur as { cause?: unknown }).cause, depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && OUT_OF_SPACE.has(code)) {
      return new AppError('INSUFFICIENT_STORAGE', `Not enough storage space to store this (${code}); free space or delete content, then retry`, { cause: e });
    }
  }
  return null;
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
