import type Koa from 'koa';
import type { AppError } from '../../src/errors.js';
import { BASIC_CHALLENGE } from '../../src/http/auth.js';

/**
 * Plain text, and the message as the status line's reason too: twine prints the reason phrase,
 * and recognises a duplicate (`--skip-existing`) by "already exist" in it. pip retries with
 * credentials only after a 401 carrying a Basic challenge.
 */
export function renderPypiError(ctx: Koa.Context, err: AppError): void {
  if (err.status === 401 && !ctx.response.get('WWW-Authenticate')) ctx.set('WWW-Authenticate', BASIC_CHALLENGE);
  // A reason phrase is one line of visible Latin-1.
  const reason = err.message.replace(/[^\x20-\x7e]+/g, ' ').slice(0, 300);
  if (reason) ctx.message = reason;
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
  ctx.body = err.message + '\n';
}
