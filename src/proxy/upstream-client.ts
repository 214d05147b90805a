import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';

/**
 * The connection pools of a node, shared by every proxy repository: node:http keep-alive agents,
 * one per protocol.
 *
 * Not undici (which the project otherwise prefers for HTTP clients): no undici release that runs
 * on Node 20 is both safe and strict. From 7.26.0 (and 6.29.1), which reject a chunked body cut
 * short by the remote closing the connection (nodejs/undici#5307), up to 7.30.2 (the newest 7.x,
 * checked 2026-12), a remote that sends a Content-Length or connection-delimited body with
 * `Connection: close` and closes (FIN) while the body is paused by backpressure ends the whole
 * process with an uncatchable `assert(!this.paused)` (nodejs/undici#5360, fixed only in undici 8,
 * which needs Node 22 and does not load on 20): any such answer we spool more slowly than it arrives, or a remote dying
 * mid-body. It happens with request() bodies, stream(), fetch(), and dispatch() handlers pausing by
 * `onData` returning false or by `controller.pause()`; with Agent, Pool and Client; with pipelining
 * 0, 1 or the default. Only a handler that never pauses escapes it, by buffering without limit.
 * 7.25.0 and earlier (7.10.0 and 7.25.0 tested) do not crash but take a chunked body cut short on a `Connection: close` answer
 * for a whole one, which node:http reports as an error. A proxy cannot choose its remotes'
 * framing; proxy-short-body.test.ts plays such remotes with a raw socket server.
 */
export class UpstreamPools {
  private pools?: { http: http.Agent; https: https.Agent };
  private closed = false;

  dispatcher(): Promise<{ http: http.Agent; https: https.Agent }> {
    if (this.closed) return Promise.reject(new UpstreamError('network', 'The server is stopping'));
    this.pools ??= { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };
    return Promise.resolve(this.pools);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.pools?.http.destroy();
    this.pools?.https.destroy();
  }
}

export interface UpstreamOptions {
  agents: UpstreamPools;
  /** Inactivity limit: connecting and waiting for headers, then between body bytes. */
  timeoutMs: number;
  /** Further attempts after a network error or timeout before any response arrived. */
  retries: number;
  userAgent: string;
  /** Authorization header value, sent to the remote's own origin only. */
  authorization?: string;
  maxRedirects?: number;
}

export interface UpstreamResponse {
  status: number;
  /** The URL that answered (after redirects). */
  url: string;
  headers: IncomingHttpHeaders;
  /** The announced body length; null when unknown (chunked, or decoded from a content encoding). */
  size: number | null;
  /** The body, decoded; destroy it when not reading it. */
  body: Readable;
}

/** The remote could not be reached or stopped answering: what auto-block counts. */
export class UpstreamError extends Error {
  constructor(
    readonly kind: 'network' | 'timeout',
    message: string,
    opts?: { cause?: unknown },
  ) {
    super(message, opts);
    this.name = 'UpstreamError';
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Requests to a remote, streaming: node:http with keep-alive (see UpstreamPools for why not
 * undici), a socket inactivity timeout, retries before the response starts (and one free retry
 * on a kept-alive socket the remote had closed), redirects followed (credentials only to the
 * remote's origin), and bodies decoded when a server sends a content encoding anyway.
 */
export class UpstreamClient {
  constructor(private readonly opts: UpstreamOptions) {}

  /** The configured Authorization value (for a token endpoint that wants the same credentials). */
  get authorization(): string | undefined {
    return this.opts.authorization;
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.follow(url, headers);
      } catch (e) {
        const err = e as UpstreamError & { reusedSocket?: boolean };
        if (!(err instanceof UpstreamError)) throw e;
        // A kept-alive socket the server closed meanwhile is not the remote failing: one free retry.
        const stale = err.reusedSocket && attempt === 0;
        if (attempt >= this.opts.retries && !stale) throw e;
        if (!stale) await delay(Math.min(100 * 2 ** attempt, 2000));
      }
    }
  }

  /**
   * One POST with the configured credentials (the remote's own origin only) and a body held in
   * memory (small API calls, e.g. npm audit); redirects are not followed, errors not retried.
   */
  post(url: string, body: Buffer, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    const h: Record<string, string> = { 'User-Agent': this.opts.userAgent, 'Accept-Encoding': 'identity', Accept: '*/*', ...headers };
    if (this.opts.authorization) h.Authorization = this.opts.authorization;
    return this.once(new URL(url), h, 'POST', body);
  }

  private async follow(url: string, headers: Record<string, string>): Promise<UpstreamResponse> {
    const origin = new URL(url).origin;
    let current = new URL(url);
    // An explicit Authorization (a token for this request) follows the same rule as the configured one.
    const { Authorization: explicit, ...rest } = headers;
    headers = rest;
    const authorization = explicit ?? this.opts.authorization;
    const max = this.opts.maxRedirects ?? 10;
    for (let hop = 0; ; hop++) {
      const h: Record<string, string> = {
        'User-Agent': this.opts.userAgent,
        'Accept-Encoding': 'identity',
        Accept: '*/*',
        ...headers,
      };
      // Credentials go to the configured remote only, never to wherever it redirects.
      if (authorization && current.origin === origin) h.Authorization = authorization;
      const res = await this.once(current, h, 'GET');
      const location = res.headers.location;
      if (!REDIRECTS.has(res.status) || typeof location !== 'string') return res;
      res.body.resume();
      if (hop >= max) throw new RedirectError(`Too many redirects (more than ${max}) from ${url}`);
      const next = new URL(location, current);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') throw new RedirectError(`Redirect to an unsupported URL: ${next.href}`);
      current = next;
    }
  }

  private async once(url: URL, headers: Record<string, string>, method: 'GET' | 'POST', body?: Buffer): Promise<UpstreamResponse> {
    const pools = await this.opts.agents.dispatcher();
    const secure = url.protocol === 'https:';
    const mod = secure ? https : http;
    const agent = secure ? pools.https : pools.http;
    const seconds = this.opts.timeoutMs / 1000;
    return new Promise((resolve, reject) => {
      let response: http.IncomingMessage | undefined;
      const h = body ? { ...headers, 'Content-Length': String(body.length) } : headers;
      const req = mod.request(url, { method, headers: h, agent }, (res) => {
        response = res;
        resolve(this.wrap(url, res));
      });
      req.setTimeout(this.opts.timeoutMs, () => {
        const what = response ? 'sent no data' : 'did not answer';
        req.destroy(new UpstreamError('timeout', `${url.host} ${what} for ${seconds} s (${url.href})`));
      });
      req.on('error', (e) => {
        const err = e instanceof UpstreamError ? e : new UpstreamError('network', `${url.host}: ${(e as NodeJS.ErrnoException).code ?? e.message} (${url.href})`, { cause: e });
        if (response) {
          // Mid-body: the body stream carries the error to whoever reads it.
          response.destroy(err);
          return;
        }
        Object.assign(err, { reusedSocket: req.reusedSocket });
        reject(err);
      });
      req.end(body);
    });
  }

  private wrap(url: URL, res: http.IncomingMessage): UpstreamResponse {
    const encoding = String(res.headers['content-encoding'] ?? 'identity')
      .trim()
      .toLowerCase();
    const decoder =
      encoding === 'gzip' || encoding === 'x-gzip' ? zlib.createGunzip() : encoding === 'deflate' ? zlib.createInflate() : encoding === 'br' ? zlib.createBrotliDecompress() : null;
    const declared = res.headers['content-length'];
    const length = declared !== undefined && /^\d+$/.test(declared) ? Number(declared) : null;
    let body: Readable = res;
    if (decoder) body = pipeline(res, decoder, () => undefined);
    // Errors reach whoever reads the body (pipeline, drain); until someone does, they must not crash the process.
    res.on('error', () => undefined);
    body.on('error', () => undefined);
    // Premature close of a body without Content-Length is still a truncated body.
    res.on('aborted', () => res.destroy(new UpstreamError('network', `${url.host} closed the connection mid-body (${url.href})`)));
    return { status: res.statusCode ?? 0, url: url.href, headers: res.headers, size: decoder ? null : length, body };
  }
}

/** A redirect the client will not follow: the remote misbehaves, but it is reachable. */
export class RedirectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedirectError';
  }
}
