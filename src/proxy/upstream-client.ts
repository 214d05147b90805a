import type { IncomingHttpHeaders } from 'node:http';
import { pipeline, type Readable } from 'node:stream';
import zlib from 'node:zlib';
import type { Agent, Dispatcher } from 'undici';

/**
 * The connection pools of a node, shared by every proxy repository: one undici Agent, which keeps
 * a keep-alive pool per origin. undici is loaded on the first upstream request: a server that
 * proxies nothing does not pay its start-up time and memory (~10 MB).
 */
export class UpstreamPools {
  private agent?: Promise<Agent>;
  private closed = false;

  dispatcher(): Promise<Agent> {
    if (this.closed) return Promise.reject(new UpstreamError('network', 'The server is stopping'));
    return (this.agent ??= import('undici').then(({ Agent }) => new Agent({ connections: 256 })));
  }

  async close(): Promise<void> {
    this.closed = true;
    await (await this.agent)?.destroy();
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

/** undici's codes for a remote that did not answer in time (mid-body: BodyTimeoutError). */
const TIMEOUTS = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT']);

/**
 * Requests to a remote, streaming, through undici: keep-alive pools per origin (undici honours
 * the remote's `Keep-Alive: timeout` hint, so a socket the remote is about to close is not
 * reused), an inactivity timeout, retries before the response starts, redirects followed
 * (credentials only to the remote's origin), and bodies decoded when a server sends a content
 * encoding anyway.
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
        if (!(e instanceof UpstreamError) || attempt >= this.opts.retries) throw e;
        await delay(Math.min(100 * 2 ** attempt, 2000));
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
    const dispatcher: Dispatcher = await this.opts.agents.dispatcher();
    const seconds = this.opts.timeoutMs / 1000;
    // Connecting and waiting for the headers share one limit; the agent's own connect timeout
    // is one for all repositories.
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new UpstreamError('timeout', `${url.host} did not answer for ${seconds} s (${url.href})`)), this.opts.timeoutMs);
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body,
        signal: abort.signal,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
      });
    } catch (e) {
      if (e instanceof UpstreamError) throw e;
      if (abort.signal.aborted && abort.signal.reason instanceof UpstreamError) throw abort.signal.reason;
      const err = e as Error & { code?: string; cause?: { code?: string } };
      if (err.code && TIMEOUTS.has(err.code)) throw new UpstreamError('timeout', `${url.host} did not answer for ${seconds} s (${url.href})`, { cause: e });
      const code = err.cause?.code ?? (err.code?.startsWith('UND_ERR') ? err.message : err.code) ?? err.message;
      throw new UpstreamError('network', `${url.host}: ${code} (${url.href})`, { cause: e });
    } finally {
      clearTimeout(timer);
    }
    return this.wrap(url, res);
  }

  private wrap(url: URL, res: Dispatcher.ResponseData): UpstreamResponse {
    const headers = res.headers as IncomingHttpHeaders;
    const encoding = String(headers['content-encoding'] ?? 'identity')
      .trim()
      .toLowerCase();
    const decoder =
      encoding === 'gzip' || encoding === 'x-gzip' ? zlib.createGunzip() : encoding === 'deflate' ? zlib.createInflate() : encoding === 'br' ? zlib.createBrotliDecompress() : null;
    const declared = headers['content-length'];
    const length = typeof declared === 'string' && /^\d+$/.test(declared) ? Number(declared) : null;
    const raw = res.body as unknown as Readable;
    let body: Readable = raw;
    if (decoder) body = pipeline(raw, decoder, () => undefined);
    // Errors (a body cut short, undici's body timeout) reach whoever reads the body (pipeline,
    // drain); until someone does, they must not crash the process.
    raw.on('error', () => undefined);
    body.on('error', () => undefined);
    return { status: res.statusCode, url: url.href, headers, size: decoder ? null : length, body };
  }
}

/** A redirect the client will not follow: the remote misbehaves, but it is reachable. */
export class RedirectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedirectError';
  }
}
