import { STATUS_CODES } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { LRUCache } from 'lru-cache';
import type { BlobRow } from '../blob/blob-service.js';
import { DigestStream, type Digests } from '../blob/digest-stream.js';
import type { AssetKind, AssetRow, ComponentInput } from '../content/types.js';
import { AppError } from '../errors.js';
import type { FlightResult } from '../proxy/single-flight.js';
import { Spool } from '../proxy/spool.js';
import { GzipEndCheck, expectedMismatch, isCloseDelimited, verifiable } from '../proxy/body-check.js';
import type { ExpectedContent, UpstreamFetch } from './format.js';
import { RedirectError, UpstreamError, type UpstreamResponse } from '../proxy/upstream-client.js';
import { joinRemote } from '../proxy/upstream-url.js';
import { Repository, type DeleteOptions } from './repository.js';
import type { Content, GetOptions } from './types.js';

/** Upstream validators kept in a cached asset's attributes, for conditional revalidation. */
interface UpstreamValidators {
  etag: string | null;
  lastModified: string | null;
  /** The body ended with the connection and nothing proved it whole: revalidated like metadata. */
  unverified?: boolean;
}

/** What the store step writes for a fetched body. */
interface StoreMeta {
  contentType: string;
  kind: AssetKind;
  component?: ComponentInput | null;
  attributes: { upstream: UpstreamValidators };
}

type Flight = FlightResult<Content | null>;

const MINUTE = 60_000;
/** Unwanted bodies (error pages) up to this size are read to keep the connection alive. */
const DRAIN_MAX = 256 * 1024;
/** Metadata blobs (`<format>\n<sha256>`) the format's validateMetadata accepted: checked once per node. */
const usableMetadata = new LRUCache<string, true>({ max: 10_000 });

/**
 * A cache of a remote, written once for every format (formats supply hooks: isMetadata,
 * upstreamUrl, proxyAsset). Reading a path goes, top to bottom:
 *   fresh cached copy (metadata: one the format can use) → serve it
 *   otherwise, once per path and node (single-flight):
 *     negative cache hit → not found (or the stale copy)
 *     remote blocked (manually, or auto-blocked after failures) → the stale copy, else 502
 *     ask upstream, conditionally when a stale copy exists:
 *       200 → spool while hashing once, stream to every waiting client, then store
 *       304 → the copy is verified again
 *       404/410 → negative cache entry, not found (a stale copy is still served, as Nexus)
 *       unreachable / timeout / 5xx → count a failure (auto-block), serve the stale copy, else 502/504
 *       401/403 and anything else → serve the stale copy, else 502; never cached
 */
export class ProxyRepository extends Repository {
  async get(path: string, opts?: GetOptions): Promise<Content | null> {
    const cached = await this.local(path);
    if (cached && this.isFresh(cached.asset, path) && (await this.usable(cached, path))) return cached;
    return this.app.proxy.flights.run(`${this.id}\n${path}`, () => this.refresh(path, opts?.upstreamPath ?? path));
  }

  /** Removes the cached copy (and any negative cache entry): the next request fetches again. */
  override async delete(path: string, opts?: DeleteOptions): Promise<boolean> {
    await this.app.proxy.state.forgetMissing(this.id, path);
    return super.delete(path, opts);
  }

  /** Whether a cached asset may be served without asking upstream (max ages in minutes, -1 = forever). */
  isFresh(asset: AssetRow, path: string, at = Date.now()): boolean {
    if (asset.last_verified === null) return false; // never verified, or invalidated
    const p = this.config.proxy;
    const minutes = (this.format.isMetadata?.(path) || unverified(asset) ? p?.metadataMaxAge : p?.contentMaxAge) ?? 1440;
    if (minutes < 0) return true;
    return at - asset.last_verified < minutes * MINUTE;
  }

  upstreamUrl(path: string): string {
    const remote = this.config.proxy!.remoteUrl;
    return this.format.upstreamUrl ? this.format.upstreamUrl(remote, path, this) : joinRemote(remote, path);
  }

  /** What a format hook asks upstream (a checksum file, an index), fetched as the proxy fetches. */
  private readonly upstreamFetch: UpstreamFetch = {
    get: async (path) => this.app.proxy.client(this.config).get(this.upstreamUrl(path), (await this.format.upstreamHeaders?.(path, this)) ?? {}),
  };

  /** The single-flight leader's work for a stale or missing path. */
  private async refresh(path: string, upstreamPath: string): Promise<Flight> {
    const { state } = this.app.proxy;
    // A flight that ended a moment ago may have stored it. A copy the format cannot use is as
    // good as none: not served stale, and no validators sent (a 304 would keep it).
    const local = await this.local(path);
    const cached = local && (await this.usable(local, path)) ? local : null;
    if (cached && this.isFresh(cached.asset, path)) return { value: cached };
    if (await state.isMissing(this.id, path)) return { value: cached };

    const remote = this.config.proxy!.remoteUrl;
    const autoBlock = this.config.httpClient?.autoBlock ?? true;
    if (this.config.httpClient?.blocked) {
      return { value: this.stale(cached, path, this.gatewayError(`remote ${remote} is blocked (httpClient.blocked)`, path)) };
    }
    // Long enough for the probe to get its answer; should its node die, another may probe after it.
    const probeMs = this.app.proxy.timeoutMs(this.config) * (this.app.proxy.retries(this.config) + 1) + 1000;
    const gate = await state.gate(this.id, autoBlock, probeMs);
    if (!gate.open) {
      const s = gate.state;
      const why = `remote ${remote} is auto-blocked until ${new Date(s.blockedUntil!).toISOString()} after ${s.failures} failure(s)${s.lastError ? ` (last: ${s.lastError})` : ''}`;
      return { value: this.stale(cached, path, this.gatewayError(why, path)) };
    }

    const url = this.upstreamUrl(upstreamPath);
    const headers: Record<string, string> = { ...((await this.format.upstreamHeaders?.(upstreamPath, this)) ?? {}) };
    const v = cached ? validators(cached.asset) : null;
    if (v?.etag) headers['If-None-Match'] = v.etag;
    if (v?.lastModified) headers['If-Modified-Since'] = v.lastModified;

    let res: UpstreamResponse;
    try {
      const client = this.app.proxy.client(this.config);
      res = await client.get(url, headers);
      if (res.status === 401 && this.format.upstreamChallenge) {
        // The remote wants other credentials (a registry's bearer token): the format gets them, one retry.
        const retry = await this.format.upstreamChallenge(res, this, client);
        if (retry) {
          discard(res);
          res = await client.get(url, { ...headers, ...retry });
        }
      }
    } catch (e) {
      if (e instanceof UpstreamError) {
        const s = await state.failure(this.id, e.message, autoBlock);
        const blocked = s.blockedUntil ? `; remote auto-blocked until ${new Date(s.blockedUntil).toISOString()}` : '';
        const code = e.kind === 'timeout' ? 'UPSTREAM_TIMEOUT' : 'BAD_GATEWAY';
        return { value: this.stale(cached, path, this.gatewayError(e.message + blocked, path, code)) };
      }
      if (e instanceof RedirectError) return { value: this.stale(cached, path, this.gatewayError(e.message, path)) };
      throw e;
    }

    if (res.status >= 500) {
      discard(res);
      const why = `${url} answered ${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim();
      const s = await state.failure(this.id, why, autoBlock);
      const blocked = s.blockedUntil ? `; remote auto-blocked until ${new Date(s.blockedUntil).toISOString()}` : '';
      return { value: this.stale(cached, path, this.gatewayError(why + blocked, path)) };
    }
    if (gate.recovering) await state.success(this.id);

    if (res.status === 200) return this.download(path, res, cached);
    discard(res);
    if (res.status === 304 && cached) {
      const at = Date.now();
      await this.app.content.touchVerified(cached.asset.id, at);
      return { value: { ...cached, asset: { ...cached.asset, last_verified: at } } };
    }
    if (res.status === 404 || res.status === 410) {
      const nc = this.config.negativeCache;
      if (nc?.enabled) await state.rememberMissing(this.id, path, res.status, nc.timeToLive < 0 ? -1 : nc.timeToLive * MINUTE);
      if (cached) this.app.log.warn(`Proxy '${this.name}': ${url} is gone upstream (${res.status}); serving the cached copy`);
      return { value: cached };
    }
    if (res.status === 401 || res.status === 403) {
      const why = `${url} refused access (${res.status} ${STATUS_CODES[res.status]}): check the repository's httpClient.authentication`;
      return { value: this.stale(cached, path, this.gatewayError(why, path)) };
    }
    return { value: this.stale(cached, path, this.gatewayError(`${url} answered an unexpected ${res.status} ${STATUS_CODES[res.status] ?? ''}`.trim(), path)) };
  }

  /**
   * Streams a 200 body into a spool while hashing it once; every waiting client reads the spool
   * as it grows. When the body is complete it is published into the blob store (no second hash)
   * and committed in one transaction. Clients going away do not stop it; an upstream failing
   * mid-body fails every reader and stores nothing.
   */
  private async download(path: string, res: UpstreamResponse, cached: Content | null): Promise<Flight> {
    let spool: Spool;
    let meta: StoreMeta;
    try {
      meta = this.storeMeta(path, res);
      spool = await Spool.create(this.app.proxy.spoolDir);
    } catch (e) {
      res.body.destroy();
      throw e;
    }
    // Re-cut into pooled buffers: the spool hands each back once written.
    const digest = new DigestStream({ expectedSize: res.size ?? undefined, digests: this.format.digests }, true);
    // An HTML error page sent for `lib.jar` fails here, before a byte reaches the spool or a client.
    let refused: AppError | undefined;
    let decide: (e: Error | null) => void = () => undefined;
    const decided = new Promise<Error | null>((r) => (decide = r));
    const guard = this.strictContentType(path, meta.kind, {
      error: (m) => (refused = this.gatewayError(`${res.url} sent content that does not fit: ${m}`, path)),
      onDecision: decide,
    });
    // A close-delimited body may have been cut short: its gzip trailer, if it has one, tells.
    const gzip = isCloseDelimited(res.headers) ? new GzipEndCheck() : null;
    const expected = this.expectedContent(path);
    const stored = (async (): Promise<Content> => {
      try {
        try {
          await pipeline([res.body, ...(guard ? [guard] : []), ...(gzip ? [gzip] : []), digest, spool.writer()]);
        } catch (e) {
          spool.fail(refused ?? this.gatewayError(`${res.url} failed mid-body: ${(e as Error).message}`, path));
          throw refused ?? e;
        }
        // Readers wait at the end of the spool until the body is judged: a refused one fails them.
        const verdict = this.judgeBody(path, res, digest.digests(), await expected, gzip);
        if (verdict instanceof AppError) {
          spool.fail(verdict);
          throw verdict;
        }
        spool.complete();
        const attributes = verdict === 'unverified' ? { upstream: { etag: null, lastModified: null, unverified: true } } : meta.attributes;
        if (verdict === 'unverified')
          this.app.log.warn(`Proxy '${this.name}': ${res.url} ended with its connection and could not be verified; it is revalidated after metadataMaxAge`);
        if (meta.kind === 'metadata') {
          // A portal page or a document cut short, answered with 200, would be served as fresh.
          const why = await this.format.validateMetadata?.(path, () => Promise.resolve(spool.reader()!));
          if (why) throw (refused = this.gatewayError(`${res.url} sent a document that cannot be used: ${why}`, path));
        }
        const staged = await this.app.blobs.stageFile(this.blobStoreId, spool.path, digest.digests());
        const r = await this.commitStaged(path, staged, { ...meta, attributes, lastVerified: Date.now(), source: 'proxy' });
        if (meta.kind === 'metadata' && this.format.validateMetadata) usableMetadata.set(`${this.format.name}\n${r.blob.sha256}`, true);
        return this.wrap(r.asset, r.blob);
      } finally {
        spool.release();
      }
    })();
    stored.catch((e) => this.app.log.warn(`Proxy '${this.name}': ${res.url} was not stored: ${(e as Error).message}`));

    if (meta.kind === 'metadata') {
      // Metadata is small and formats rewrite or merge it: hand out the stored document.
      try {
        return { value: await stored };
      } catch (e) {
        return { value: this.stale(cached, path, refused ?? this.gatewayError(`${res.url} failed mid-body: ${(e as Error).message}`, path)) };
      }
    }
    if (guard) {
      // No client sees a byte (nor a 200) before the first bytes were judged.
      const failed = await Promise.race([
        decided,
        stored.then(
          () => null,
          (e: Error) => e,
        ),
      ]);
      if (failed) return { value: this.stale(cached, path, refused ?? this.gatewayError(`${res.url} failed mid-body: ${failed.message}`, path)) };
    }
    return { value: this.pending(path, res, spool, stored, meta), hold: stored };
  }

  /** The format's statement of what `path` must be (never fails the fetch: a broken hook just verifies nothing). */
  private async expectedContent(path: string): Promise<ExpectedContent | null> {
    try {
      return (await this.format.proxyExpected?.(path, this, this.upstreamFetch)) ?? null;
    } catch (e) {
      this.app.log.warn(`Proxy '${this.name}': could not tell what '${path}' should be: ${(e as Error).message}`);
      return null;
    }
  }

  /**
   * A received body: refused (it differs from what the format's metadata states, or its gzip
   * stream stops before the end), 'verified', or 'unverified' (it ended with the connection and
   * nothing could prove it whole: cached, but not as a permanent entry).
   */
  private judgeBody(path: string, res: UpstreamResponse, d: Digests, expected: ExpectedContent | null, gzip: GzipEndCheck | null): AppError | 'verified' | 'unverified' {
    const wrong = expectedMismatch(d, expected);
    if (wrong) return this.gatewayError(`${res.url} sent a body that does not match the format's metadata (${wrong})`, path);
    if (!gzip) return 'verified';
    if (gzip.result === 'truncated') return this.gatewayError(`${res.url} closed the connection before the end of the gzip stream (${d.size} bytes received)`, path);
    return gzip.result === 'complete' || verifiable(expected) ? 'verified' : 'unverified';
  }

  /** Whether a cached copy may be served: metadata only when the format can use it (checked once per blob). */
  private async usable(c: Content, path: string): Promise<boolean> {
    if (!this.format.validateMetadata || c.pending || c.asset.kind !== 'metadata') return true;
    const key = `${this.format.name}\n${c.blob.sha256}`;
    if (usableMetadata.has(key)) return true;
    const why = await this.format.validateMetadata(path, () => c.open());
    if (why) {
      this.app.log.warn(`Proxy '${this.name}': the cached '${path}' cannot be used (${why}); fetching it again`);
      return false;
    }
    usableMetadata.set(key, true);
    return true;
  }

  private storeMeta(path: string, res: UpstreamResponse): StoreMeta {
    const header = (name: string): string | null => {
      const h = res.headers[name];
      return (Array.isArray(h) ? h[0] : h) ?? null;
    };
    const upstreamType = header('content-type');
    const hook = this.format.proxyAsset?.(path, { contentType: upstreamType }) ?? {};
    return {
      contentType: hook.contentType ?? upstreamType ?? 'application/octet-stream',
      kind: this.format.isMetadata?.(path) ? 'metadata' : 'content',
      component: hook.component,
      attributes: { ...hook.attributes, upstream: { etag: header('etag'), lastModified: header('last-modified') } },
    };
  }

  /** Content whose bytes are still arriving: readers follow the spool, or the stored blob once it is gone. */
  private pending(path: string, res: UpstreamResponse, spool: Spool, stored: Promise<Content>, meta: StoreMeta): Content {
    const t = Date.now();
    const asset: AssetRow = {
      id: 0,
      repository_id: this.id,
      path,
      component_id: null,
      blob_id: 0,
      content_type: meta.contentType,
      kind: meta.kind,
      attributes: meta.attributes,
      created_at: t,
      updated_at: t,
      last_downloaded: null,
      last_verified: t,
    };
    const blob: BlobRow = {
      id: 0,
      store_id: this.blobStoreId,
      sha256: '',
      sha1: '',
      md5: '',
      sha512: null,
      blake2b256: null,
      size: res.size ?? -1,
      storage_key: '',
      created_at: t,
      touched_at: t,
    };
    return {
      asset,
      blob,
      repositoryName: this.name,
      pending: { size: res.size, stored },
      open: async (range) => {
        const reader = spool.reader(range);
        if (reader) return reader;
        const c = await stored.catch((e) => {
          throw this.gatewayError(`${res.url} failed mid-body: ${(e as Error).message}`, path);
        });
        return c.open(range);
      },
    };
  }

  private gatewayError(why: string, path: string, code: 'BAD_GATEWAY' | 'UPSTREAM_TIMEOUT' = 'BAD_GATEWAY'): AppError {
    return new AppError(code, `Repository '${this.name}' cannot fetch '${path}': ${why}`);
  }

  /** The stale copy when there is one (logged), otherwise the error. */
  private stale(cached: Content | null, path: string, err: AppError): Content {
    if (!cached) throw err;
    this.app.log.warn(`${err.message}; serving the stale cached copy`);
    return cached;
  }
}

function unverified(asset: AssetRow): boolean {
  return (asset.attributes.upstream as Partial<UpstreamValidators> | undefined)?.unverified === true;
}

function validators(asset: AssetRow): UpstreamValidators | null {
  const u = asset.attributes.upstream as Partial<UpstreamValidators> | undefined;
  return u ? { etag: u.etag ?? null, lastModified: u.lastModified ?? null } : null;
}

/** Lets an unwanted body drain so the connection stays reusable; drops it when it is large. */
function discard(res: UpstreamResponse): void {
  if (res.size !== null && res.size > DRAIN_MAX) {
    res.body.destroy();
    return;
  }
  let n = 0;
  res.body.on('data', (c: Buffer) => {
    n += c.length;
    if (n > DRAIN_MAX) res.body.destroy();
  });
  res.body.on('error', () => undefined);
  res.body.resume();
}
