import type Koa from 'koa';
import { AppError, isAppError, outOfSpace } from '../errors.js';
import type { Logger } from '../log.js';

export type ErrorRenderer = (ctx: Koa.Context, err: AppError) => void;

/** Main-listener rendering: REST API errors as JSON (Nexus shape for validation), content errors as text. */
export const renderDefault: ErrorRenderer = (ctx, err) => {
  if (ctx.path.startsWith('/service/rest/')) {
    const field = err.detail?.field;
    ctx.body = field ? [{ id: `PARAMETER ${String(field)}`, message: err.message }] : { status: err.status, message: err.message };
    return;
  }
  ctx.set('Content-Type', 'text/plain; charset=utf-8');
  ctx.body = err.message + '\n';
};

/** Errors from parsers and the platform that are the client's fault, and a full disk (507). */
function classify(e: unknown): AppError | null {
  if (isAppError(e)) return e;
  const full = outOfSpace(e);
  if (full) return full;
  const err = e as { status?: number; expose?: boolean; message?: string; code?: string; type?: string };
  if (err?.code === 'ERR_STREAM_PREMATURE_CLOSE' || err?.code === 'ECONNRESET' || err?.message === 'aborted') {
    return new AppError('BAD_REQUEST', 'Request body was not received completely');
  }
  if (typeof err?.status === 'number' && err.status >= 400 && err.status < 500) {
    return new AppError('BAD_REQUEST', err.message ?? 'Bad request', { status: err.status });
  }
  return null;
}

/**
 * The one error boundary of a listener: AppErrors become their status and the renderer's
 * body (a format may set ctx.state.renderError for its clients); anything else is logged and
 * answered 500 without internals.
 */
export function errorBoundary(log: Logger, fallback: ErrorRenderer = renderDefault): Koa.Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (e) {
      let err = classify(e);
      if (!err) {
        log.error(`${ctx.method} ${ctx.url} failed`, e);
        err = new AppError('INTERNAL', 'Internal server error');
      }
      // Headers already on the wire: nothing more can be said; end the response.
      if (ctx.headerSent || !ctx.writable) {
        ctx.res.destroy();
        return;
      }
      // Drop headers set for the failed response (Content-Length of a body never sent, ETag…).
      for (const h of Object.keys(ctx.response.headers)) ctx.remove(h);
      ctx.status = err.status;
      for (const [k, v] of Object.entries(err.headers ?? {})) ctx.set(k, v);
      const renderer = (ctx.state.renderError as ErrorRenderer | undefined) ?? fallback;
      renderer(ctx, err);
      // A request body we did not read must not be left on a keep-alive connection.
      if (!ctx.req.complete) ctx.set('Connection', 'close');
    }
  };
}
