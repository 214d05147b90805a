import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import type { Logger } from '../log.js';

/** An incoming id is kept only when it cannot break a log line or a header: short, plain characters. */
const SAFE_ID = /^[A-Za-z0-9._:@-]{1,64}$/;

const PREFIX = '/repository/';

/** A request's id: the client's `X-Request-Id` when it is safe, else a new one. */
export function requestIdOf(req: IncomingMessage): string {
  const incoming = req.headers['x-request-id'];
  return typeof incoming === 'string' && SAFE_ID.test(incoming) ? incoming : randomUUID();
}

/** The repository a request addressed: set by whoever resolved it, else the listener's, else the path's. */
function repositoryOf(ctx: Koa.Context, fixed: string | undefined): string | undefined {
  const r = ctx.state.repository as string | { name?: string } | undefined;
  if (typeof r === 'string') return r;
  if (r?.name) return r.name;
  if (fixed) return fixed;
  if (!ctx.path.startsWith(PREFIX)) return undefined;
  const rest = ctx.path.slice(PREFIX.length);
  const slash = rest.indexOf('/');
  try {
    return decodeURIComponent(slash < 0 ? rest : rest.slice(0, slash)) || undefined;
  } catch {
    return undefined;
  }
}

/** A request's logger: the child logger carrying the request id is made on first use (most requests log nothing). */
class RequestLog implements Logger {
  private made?: Logger;
  constructor(
    private readonly base: Logger,
    private readonly reqId: string,
  ) {}
  private get log(): Logger {
    return (this.made ??= this.base.child({ reqId: this.reqId }));
  }
  debug(msg: string, ...rest: unknown[]): void {
    this.log.debug(msg, ...rest);
  }
  info(msg: string, ...rest: unknown[]): void {
    this.log.info(msg, ...rest);
  }
  warn(msg: string, ...rest: unknown[]): void {
    this.log.warn(msg, ...rest);
  }
  error(msg: string, ...rest: unknown[]): void {
    this.log.error(msg, ...rest);
  }
  child(bindings: Record<string, unknown>): Logger {
    return this.log.child(bindings);
  }
  get pino(): Logger['pino'] {
    return this.log.pino;
  }
  access(fields: Record<string, unknown>): void {
    this.log.access(fields);
  }
  flush(): void {
    this.log.flush();
  }
}

/** Headers on every response, failed ones too (the error boundary drops what was set before it). */
const COMMON_HEADERS: ReadonlyArray<[string, string]> = [
  ['Server', 'Stowage'],
  ['X-Content-Type-Options', 'nosniff'],
];

/**
 * Gives each request an id (the client's `X-Request-Id` when it is safe, else a new one), sends
 * it back as `X-Request-Id` with the common headers (`Server`, `X-Content-Type-Options`), offers `ctx.state.log`, a logger whose lines carry it, and writes one
 * access line when the response is over (finished or cut): request id, user, repository, method,
 * path (without the query, which may hold a token), status, bytes sent and duration in ms.
 * Outermost middleware of a listener, so the status is the one the error boundary chose.
 */
export function accessLog(log: Logger, repository?: string): Koa.Middleware {
  return async (ctx, next) => {
    const reqId = requestIdOf(ctx.req);
    ctx.state.log = new RequestLog(log, reqId);
    if (!log.pino.isLevelEnabled('info')) return withId(ctx, reqId, next);

    const start = performance.now();
    const res = ctx.res;
    // Bytes the server wrote itself; a body sent by sendfile(2) bypasses write(), so a completed
    // response with a Content-Length counts that instead.
    let written = 0;
    const write = res.write;
    const end = res.end;
    const count = (chunk: unknown, encoding?: unknown) => {
      if (typeof chunk === 'string') written += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
      else if (chunk instanceof Uint8Array) written += chunk.byteLength;
    };
    res.write = function (this: typeof res, chunk: unknown, ...args: unknown[]) {
      count(chunk, args[0]);
      return (write as (...a: unknown[]) => boolean).call(this, chunk, ...args);
    } as typeof res.write;
    res.end = function (this: typeof res, chunk?: unknown, ...args: unknown[]) {
      if (typeof chunk !== 'function') count(chunk, args[0]);
      return (end as (...a: unknown[]) => typeof res).call(this, chunk, ...args);
    } as typeof res.end;
    const method = ctx.method;
    const path = ctx.path;
    res.once('close', () => {
      const declared = Number(res.getHeader('content-length'));
      const bytes = res.writableFinished && method !== 'HEAD' && Number.isFinite(declared) ? Math.max(written, declared) : written;
      const principal = ctx.state.principal as { userId?: string } | undefined;
      log.access({
        reqId,
        user: principal?.userId,
        repository: repositoryOf(ctx, repository),
        method,
        path,
        status: res.statusCode,
        bytes,
        ms: Math.round((performance.now() - start) * 10) / 10,
        ...(res.writableFinished ? {} : { aborted: true }),
      });
    });
    return withId(ctx, reqId, next);
  };
}

/**
 * The id and the common headers, set before the rest runs (a streamed body sends headers early)
 * and again after it: the error boundary drops the headers of a failed response.
 */
async function withId(ctx: Koa.Context, reqId: string, next: Koa.Next): Promise<void> {
  const res = ctx.res;
  for (const [k, v] of COMMON_HEADERS) res.setHeader(k, v);
  res.setHeader('X-Request-Id', reqId);
  try {
    await next();
  } finally {
    if (!res.headersSent) {
      for (const [k, v] of COMMON_HEADERS) res.setHeader(k, v);
      res.setHeader('X-Request-Id', reqId);
    }
  }
}
