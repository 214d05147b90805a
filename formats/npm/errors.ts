import type Koa from 'koa';
import { AppError } from '../../src/errors.js';
import { BASIC_CHALLENGE } from '../../src/http/auth.js';
import { NpmInputError } from './packument.js';

/**
 * npm's error shape: JSON `{error, reason}`; the CLI prints `error` after the status line.
 * A write the policy refuses is a permission problem for npm (403), as on the public registry.
 */
export function renderNpmError(ctx: Koa.Context, err: AppError): void {
  if (err.code === 'WRITE_POLICY') ctx.status = 403;
  // npm only retries with credentials after a 401 that carries a challenge; never mention `otp`.
  if (err.status === 401 && !ctx.response.get('WWW-Authenticate')) ctx.set('WWW-Authenticate', BASIC_CHALLENGE);
  ctx.set('Content-Type', 'application/json');
  ctx.body = JSON.stringify({ error: err.message, reason: err.message });
}

/** A 400 for malformed input from the pure functions, anything else unchanged. */
export function asAppError(e: unknown): unknown {
  if (e instanceof NpmInputError) return new AppError('BAD_REQUEST', e.message);
  return e;
}
