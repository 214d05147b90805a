import http from 'node:http';
import type { Readable } from 'node:stream';
import type { Socket } from 'node:net';
import { AppError } from '../errors.js';

/**
 * Limits on how a client may hold a request open: how long its headers may take, how long its
 * body may stall, and how long an unread body is still drained after the answer so that the
 * client reads it. (What callers not signed in may buffer is a BodyBudget, shared by listeners.)
 */
export interface RequestLimits {
  /** Whole request head (Node's headersTimeout); 0 = none. */
  headersTimeoutMs: number;
  /** A request body that sends nothing for this long is answered 408 and closed; 0 = none. */
  bodyIdleTimeoutMs: number;
  /** After an answer sent before the body was read: bytes and time still read and discarded before closing. */
  lingerBytes: number;
  lingerMs: number;
}

/**
 * Bytes buffered right now by requests from callers that have not signed in: a cap, so that
 * many slow anonymous bodies cannot exhaust memory (each is small, all together are not).
 */
export class BodyBudget {
  private used = 0;
  constructor(readonly limit: number) {}

  take(n: number): void {
    if (this.limit > 0 && this.used + n > this.limit) {
      throw new AppError('OFFLINE', 'Too many request bodies from callers that have not signed in are in progress; try again later or sign in', {
        headers: { 'Retry-After': '5' },
      });
    }
    this.used += n;
  }

  release(n: number): void {
    this.used = Math.max(0, this.used - n);
  }

  get inUse(): number {
    return this.used;
  }
}

/** On the request stream itself: a WeakMap entry per request cost more (ephemerons for the GC). */
const BUDGET = Symbol('bodyBudget');

/** Charges what `readSmall` buffers of this request to `budget` (set for callers not signed in). */
export function chargeBufferedBody(req: Readable, budget: BodyBudget): void {
  (req as Readable & { [BUDGET]?: BodyBudget })[BUDGET] = budget;
}

/** The budget a request's buffered body is charged to, if any. */
export function bufferedBodyBudget(stream: Readable): BodyBudget | undefined {
  return (stream as Readable & { [BUDGET]?: BodyBudget })[BUDGET];
}

/** True when the request announces a body (Content-Length > 0 or chunked). */
function hasBody(req: http.IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return (len !== undefined && len !== '0') || req.headers['transfer-encoding'] !== undefined;
}

const current = new WeakMap<Socket, http.IncomingMessage>();
const lingering = new WeakSet<Socket>();

/**
 * Applies the limits to a server: Node's header timeout (checked every second rather than every
 * 30 s), an idle timeout while a request body is arriving (a long upload that keeps sending is
 * never cut), and a bounded drain of unread bodies after an early answer.
 */
export function applyRequestLimits(server: http.Server, limits: RequestLimits): void {
  server.headersTimeout = limits.headersTimeoutMs;
  // `Expect: 100-continue` (curl for bodies over 1 MiB): Node would say "continue" at once; it
  // is said when the handler first reads the body instead, so a request refused before that (401,
  // 403, a refused overwrite) is answered without the client ever sending its body.
  server.on('checkContinue', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const read = req._read;
    req._read = function (this: http.IncomingMessage, n: number) {
      req._read = read;
      if (!res.headersSent && !res.writableEnded) res.writeContinue();
      return read.call(this, n);
    };
    server.emit('request', req, res);
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    current.set(req.socket, req);
    lingerOnClose(req.socket, limits);
    if (limits.bodyIdleTimeoutMs > 0 && !req.complete && hasBody(req)) watchBody(req, res, limits.bodyIdleTimeoutMs);
  });
}

/**
 * The socket's idle timeout runs while the body is incomplete (reset by every byte, as Node
 * does for socket timeouts); once the body is in, processing may take as long as it takes.
 */
function watchBody(req: http.IncomingMessage, res: http.ServerResponse, ms: number): void {
  const socket = req.socket;
  socket.setTimeout(ms);
  const stop = () => {
    // After the answer Node manages the socket's timeout itself (keep-alive).
    if (!res.writableFinished && !socket.destroyed) socket.setTimeout(0);
  };
  req.once('end', stop);
  req.on('timeout', () => {
    if (res.headersSent) {
      socket.destroy();
      return;
    }
    const message = `Request body not received: nothing arrived for ${Math.round(ms / 1000)} s\n`;
    res.writeHead(408, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(message), Connection: 'close' });
    res.end(message);
  });
}

/**
 * Node closes a `Connection: close` response's socket as soon as the answer is written; a client
 * still sending its body then gets a reset (EPIPE) instead of the answer. Here the socket is
 * half-closed instead and what the client still sends is read and discarded, up to a bound of
 * bytes and time, so it reads the answer (a 401, 413 or a refused overwrite) and its message.
 */
function lingerOnClose(socket: Socket, limits: RequestLimits): void {
  if (lingering.has(socket)) return;
  lingering.add(socket);
  const destroySoon = socket.destroySoon.bind(socket);
  socket.destroySoon = () => {
    const req = current.get(socket);
    if (!req || req.complete || socket.destroyed || limits.lingerMs <= 0) return destroySoon();
    let read = 0;
    const close = () => {
      clearTimeout(timer);
      socket.off('data', count);
      if (socket.writableFinished) socket.destroy();
      else socket.once('finish', () => socket.destroy());
    };
    const count = (chunk: Buffer) => {
      read += chunk.length;
      if (read > limits.lingerBytes) close();
    };
    const timer = setTimeout(close, limits.lingerMs);
    timer.unref();
    socket.once('close', () => clearTimeout(timer));
    socket.on('data', count);
    req.once('end', close);
    socket.end();
    req.resume();
    socket.resume();
  };
}
