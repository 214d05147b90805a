import type Koa from 'koa';
import { AppError, type ErrorCode } from '../../src/errors.js';
import type { Stowage } from '../../src/stowage.js';
import { challenge } from './auth.js';

export const API_VERSION_HEADER = 'Docker-Distribution-API-Version';
export const API_VERSION = 'registry/2.0';

export type OciCode =
  | 'BLOB_UNKNOWN'
  | 'BLOB_UPLOAD_INVALID'
  | 'BLOB_UPLOAD_UNKNOWN'
  | 'DIGEST_INVALID'
  | 'MANIFEST_BLOB_UNKNOWN'
  | 'MANIFEST_INVALID'
  | 'MANIFEST_UNKNOWN'
  | 'NAME_INVALID'
  | 'NAME_UNKNOWN'
  | 'SIZE_INVALID'
  | 'TAG_INVALID'
  | 'UNAUTHORIZED'
  | 'DENIED'
  | 'UNSUPPORTED'
  | 'TOOMANYREQUESTS';

/** An AppError carrying its OCI code (the renderer uses it instead of the generic mapping). */
export function ociError(code: ErrorCode, oci: OciCode, message: string, opts: { status?: number; headers?: Record<string, string>; detail?: unknown } = {}): AppError {
  return new AppError(code, message, { status: opts.status, headers: opts.headers, detail: { oci, ociDetail: opts.detail } });
}

const GENERIC: Partial<Record<ErrorCode, OciCode>> = {
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'DENIED',
  WRITE_POLICY: 'DENIED',
  NOT_FOUND: 'NAME_UNKNOWN',
  DIGEST_INVALID: 'DIGEST_INVALID',
  SIZE_INVALID: 'SIZE_INVALID',
  METHOD_NOT_ALLOWED: 'UNSUPPORTED',
  UNSUPPORTED: 'UNSUPPORTED',
  PAYLOAD_TOO_LARGE: 'SIZE_INVALID',
  RANGE_NOT_SATISFIABLE: 'BLOB_UPLOAD_INVALID',
  BAD_REQUEST: 'UNSUPPORTED',
  OFFLINE: 'UNSUPPORTED',
};

/** The OCI code for an error (its own when it carries one). */
export function ociCodeOf(err: AppError): OciCode | 'UNKNOWN' {
  const own = err.detail?.oci;
  if (typeof own === 'string') return own as OciCode;
  if (err.status === 429) return 'TOOMANYREQUESTS';
  return GENERIC[err.code] ?? 'UNKNOWN';
}

/** `{"errors":[{"code","message","detail"}]}` with the API version header on every error. */
export function renderOciError(ctx: Koa.Context, err: AppError, app?: Stowage): void {
  const code = ociCodeOf(err);
  // Registry clients learn the token flow (or Basic) from the challenge; the token endpoint itself asks for Basic.
  if (err.status === 401 && app && !/(^|\/)v2\/token$/.test(ctx.path)) ctx.set('WWW-Authenticate', challenge(ctx, app));
  // A write the policy refuses is a permission problem for registry clients.
  if (err.code === 'WRITE_POLICY') ctx.status = 403;
  ctx.set(API_VERSION_HEADER, API_VERSION);
  ctx.set('Content-Type', 'application/json');
  const detail = err.detail?.ociDetail ?? null;
  ctx.body = JSON.stringify({ errors: [{ code, message: err.message, detail }] });
}
