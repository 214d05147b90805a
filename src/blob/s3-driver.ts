import { createReadStream, promises as fs } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { Client, type ClientOptions } from 'minio';
import { AppError } from '../errors.js';
import type { AppendedEntry, BlobDriver, BlobEntry, BlobStat, ByteRange } from './driver.js';
import { UPLOAD_ID_RE } from './file-driver.js';

/** Configuration of an `s3` blob store (the `attributes` of its `blob_stores` row). */
export interface S3Settings {
  bucket: string;
  region?: string;
  /** Folder inside the bucket that holds this store's keys (no leading or trailing slash needed). */
  prefix?: string;
  /** URL of an S3-compatible service, e.g. http://127.0.0.1:9000. Absent: AWS S3. */
  endpoint?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  /** Path-style requests (`host/bucket/key`) instead of virtual hosts; most non-AWS services need it. */
  forcePathStyle?: boolean;
}

const MiB = 1024 * 1024;
/** Smallest part we send (S3 requires 5 MiB for every part but the last). */
const MIN_PART = 8 * MiB;
const MAX_PART = 5 * 1024 * MiB;
const MAX_PARTS = 10_000;
/** Without a size hint the part size doubles every this many parts, so an unknown length still fits in 10,000 parts. */
const PARTS_PER_STEP = 2_000;
const CONTENT_TYPE = 'application/octet-stream';

const KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._\-/]*$/;
/** CopyObject copies at most this much in one request (S3's limit); larger uploads are streamed. */
const MAX_COPY = 5 * 1024 * MiB;
/** Folder (under the prefix) of uploads received in pieces: one object per piece, named by its offset. */
const UPLOADS = '.uploads';

interface Piece {
  name: string;
  offset: number;
  size: number;
  modified: Date;
}

function s3Code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

function normalisePrefix(p: string | undefined): string {
  return (p ?? '')
    .split('/')
    .filter((s) => s !== '')
    .join('/');
}

function clientOptions(s: S3Settings): ClientOptions {
  const opts: ClientOptions = { endPoint: 's3.amazonaws.com', useSSL: true };
  if (s.endpoint) {
    const raw = /^[a-z][a-z0-9+.-]*:\/\//i.test(s.endpoint) ? s.endpoint : `https://${s.endpoint}`;
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new AppError('BAD_REQUEST', `Invalid S3 endpoint URL '${s.endpoint}'`, { detail: { field: 'endpoint' } });
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new AppError('BAD_REQUEST', `S3 endpoint must be an http:// or https:// URL, got '${s.endpoint}'`, { detail: { field: 'endpoint' } });
    }
    if (url.pathname !== '/' && url.pathname !== '') {
      throw new AppError('BAD_REQUEST', `S3 endpoint must not have a path: '${s.endpoint}'`, { detail: { field: 'endpoint' } });
    }
    opts.useSSL = url.protocol === 'https:';
    opts.endPoint = url.hostname.replace(/^\[(.*)\]$/, '$1');
    opts.port = url.port ? Number(url.port) : opts.useSSL ? 443 : 80;
  }
  if (s.region) opts.region = s.region;
  if (s.forcePathStyle !== undefined) opts.pathStyle = s.forcePathStyle;
  const accessKey = s.accessKeyId || process.env.AWS_ACCESS_KEY_ID;
  const secretKey = s.secretAccessKey || process.env.AWS_SECRET_ACCESS_KEY;
  if (accessKey && secretKey) {
    opts.accessKey = accessKey;
    opts.secretKey = secretKey;
    if (!s.accessKeyId && process.env.AWS_SESSION_TOKEN) opts.sessionToken = process.env.AWS_SESSION_TOKEN;
  }
  return opts;
}

export interface S3DriverOptions {
  /** A request whose socket is silent this long before the response starts fails (default 120 s). */
  requestTimeoutMs?: number;
}

/**
 * minio sets no timeouts: a service that accepts a request and never answers would hang the
 * upload (and its parts in memory) forever. Fail a request whose socket stays silent for `ms`
 * until the response headers arrive; after that the body belongs to the reader (a slow client
 * may legitimately pause it).
 */
function stallGuard(base: typeof http | typeof https, ms: number): Pick<typeof http, 'request'> {
  const request = (opts: http.RequestOptions, cb?: (res: IncomingMessage) => void): http.ClientRequest => {
    const req = base.request(opts, cb);
    req.setTimeout(ms, () => req.destroy(new Error(`S3 request to ${opts.host ?? opts.hostname}:${opts.port} timed out after ${ms} ms without an answer`)));
    req.once('response', () => req.setTimeout(0));
    return req;
  };
  return { request: request as typeof http.request };
}

/**
 * The bytes `range` asked for, whatever the service sent: a 206 whose Content-Range is exactly the
 * request passes through untouched; a service that ignored the Range (200, whole object) or sent
 * more than asked (s3rver answers `bytes=0-0` with the whole object) is trimmed here.
 */
function exactRange(res: IncomingMessage, range: ByteRange): Readable {
  let first = 0;
  let last = Infinity;
  const m = res.statusCode === 206 ? /^bytes (\d+)-(\d+)\//.exec(String(res.headers['content-range'] ?? '')) : null;
  if (m) {
    first = Number(m[1]);
    last = Number(m[2]);
  }
  if (first === range.start && last <= range.end) return res;
  if (first > range.start) {
    res.destroy();
    throw new AppError('BAD_GATEWAY', `S3 answered range ${range.start}-${range.end} with bytes from ${first}`);
  }
  let skip = range.start - first;
  let want = range.end - range.start + 1;
  async function* trim(): AsyncGenerator<Buffer> {
    try {
      for await (const c of res) {
        let chunk = c as Buffer;
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        chunk = chunk.subarray(skip, skip + want);
        skip = 0;
        want -= chunk.length;
        yield chunk;
        if (want === 0) return;
      }
    } finally {
      res.destroy();
    }
  }
  return Readable.from(trim(), { objectMode: false });
}

/**
 * An S3 bucket (AWS or any S3-compatible service) through the `minio` client. Keys live under
 * `<prefix>/`. Writes stream through explicit multipart uploads (parts of at least 8 MiB, one
 * part uploading while the next fills, so at most two parts are in memory); S3 makes the object
 * visible only when the upload completes, so a key is either absent or whole. Any failure aborts
 * the multipart upload.
 */
export class S3BlobDriver implements BlobDriver {
  readonly type = 's3';
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: Client;
  private readonly agent: http.Agent;
  private readonly where: string;

  constructor(
    readonly settings: S3Settings,
    options: S3DriverOptions = {},
  ) {
    if (!settings || typeof settings.bucket !== 'string' || settings.bucket === '') {
      throw new AppError('BAD_REQUEST', 'An S3 blob store needs a bucket', { detail: { field: 'bucket' } });
    }
    this.bucket = settings.bucket;
    this.prefix = normalisePrefix(settings.prefix);
    const opts = clientOptions(settings);
    // Own keep-alive agent (closed by close()), no socket cap: callers bound the concurrency, and a
    // cap turns the responses minio leaves undrained when it retries a 5xx into a queue that never moves.
    const base = opts.useSSL ? https : http;
    this.agent = new base.Agent({ keepAlive: true });
    opts.transportAgent = this.agent;
    opts.transport = stallGuard(base, options.requestTimeoutMs ?? 120_000);
    this.client = new Client(opts);
    // Over plain HTTP minio signs a sha256 of every payload, i.e. hashes each byte a second time
    // (BlobService already hashes it once, and sha256 is the ingest floor on this hardware).
    // Sign `UNSIGNED-PAYLOAD` instead, as it does over HTTPS; AWS S3 and MinIO accept it on both.
    this.client.enableSHA256 = false;
    this.where = `bucket '${this.bucket}' at ${settings.endpoint ?? 'AWS S3'}`;
  }

  /** Object name of a key: `<prefix>/<key>`. */
  private object(key: string): string {
    if (!KEY_RE.test(key) || key.split('/').some((s) => s === '..' || s === '.' || s === '')) {
      throw new AppError('BAD_REQUEST', `Invalid blob key: ${key}`);
    }
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  async check(): Promise<void> {
    let exists: boolean;
    try {
      exists = await this.client.bucketExists(this.bucket);
    } catch (e) {
      throw new Error(`S3 ${this.where} is not usable: ${(e as Error).message || s3Code(e) || String(e)}`, { cause: e });
    }
    if (exists) return;
    try {
      await this.client.makeBucket(this.bucket, this.settings.region ?? '');
    } catch (e) {
      if (s3Code(e) === 'BucketAlreadyOwnedByYou') return;
      throw new Error(`S3 ${this.where} does not exist and could not be created: ${(e as Error).message || s3Code(e) || String(e)}`, {
        cause: e,
      });
    }
  }

  async stat(key: string): Promise<BlobStat | null> {
    try {
      const s = await this.client.statObject(this.bucket, this.object(key));
      return { size: s.size, modified: s.lastModified };
    } catch (e) {
      const code = s3Code(e);
      if (code === 'NotFound' || code === 'NoSuchKey') return null;
      throw e;
    }
  }

  async read(key: string, range?: ByteRange): Promise<Readable> {
    const name = this.object(key);
    try {
      if (!range) return await this.client.getObject(this.bucket, name);
      if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
        throw new AppError('RANGE_NOT_SATISFIABLE', `Invalid byte range ${range.start}-${range.end}`);
      }
      const res = (await this.client.getPartialObject(this.bucket, name, range.start, range.end - range.start + 1)) as IncomingMessage;
      return exactRange(res, range);
    } catch (e) {
      const code = s3Code(e);
      if (code === 'NoSuchKey' || code === 'NotFound') throw new AppError('NOT_FOUND', `Blob ${key} is missing from the blob store`);
      if (code === 'InvalidRange') throw new AppError('RANGE_NOT_SATISFIABLE', `Byte range ${range?.start}-${range?.end} is outside blob ${key}`);
      throw e;
    }
  }

  async write(key: string, body: Readable, size?: number): Promise<number> {
    return this.writeObject(this.object(key), key, body, size);
  }

  /** Streams `body` into object `name` (multipart past one part); the object appears only when complete. */
  private async writeObject(name: string, key: string, body: Readable, size?: number): Promise<number> {
    const base = size !== undefined && size > 0 ? Math.min(MAX_PART, Math.max(MIN_PART, Math.ceil(size / MAX_PARTS / MiB) * MiB)) : MIN_PART;
    const partSize = (n: number) => Math.min(MAX_PART, base * 2 ** Math.floor((n - 1) / PARTS_PER_STEP));

    let chunks: Buffer[] = [];
    let buffered = 0;
    let total = 0;
    let uploadId: string | undefined;
    let partNo = 0;
    const etags: { part: number; etag: string }[] = [];
    let inflight: Promise<void> | undefined;
    let failure: { error: unknown } | undefined;

    const take = (n: number): Buffer => {
      const all = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
      const part = n === all.length ? all : all.subarray(0, n);
      chunks = n === all.length ? [] : [all.subarray(n)];
      buffered -= n;
      return part;
    };

    // Sends a part once the previous one has landed: one part on the wire while the next fills.
    const send = async (part: Buffer): Promise<void> => {
      if (uploadId === undefined) {
        uploadId = await this.client.initiateNewMultipartUpload(this.bucket, name, { 'Content-Type': CONTENT_TYPE });
      }
      if (inflight) await inflight;
      const n = ++partNo;
      if (n > MAX_PARTS) throw new AppError('PAYLOAD_TOO_LARGE', `Blob ${key} is too large for one S3 object`);
      const p = this.client.uploadPart({ bucketName: this.bucket, objectName: name, uploadID: uploadId, partNumber: n, headers: {} }, part).then((r) => {
        etags.push({ part: n, etag: r.etag });
      });
      p.catch((error: unknown) => {
        failure ??= { error };
      });
      inflight = p;
    };

    try {
      for await (const c of body) {
        if (failure) throw failure.error;
        const chunk: Buffer = Buffer.isBuffer(c) ? c : Buffer.from(c as string);
        if (chunk.length === 0) continue;
        chunks.push(chunk);
        buffered += chunk.length;
        total += chunk.length;
        // Strictly more than a part: a body of exactly one part still goes as a single PUT.
        while (buffered > partSize(partNo + 1)) await send(take(partSize(partNo + 1)));
      }
      if (uploadId === undefined) {
        const whole = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, buffered);
        chunks = [];
        await this.client.putObject(this.bucket, name, whole, whole.length, { 'Content-Type': CONTENT_TYPE });
        return total;
      }
      if (buffered > 0) await send(take(buffered));
      await inflight;
      etags.sort((a, b) => a.part - b.part);
      await this.client.completeMultipartUpload(this.bucket, name, uploadId, etags);
      return total;
    } catch (e) {
      chunks = [];
      if (!body.destroyed) body.destroy();
      await inflight?.catch(() => undefined);
      if (uploadId !== undefined) {
        // Best effort: a service that refuses (s3rver does not route AbortMultipartUpload) keeps the
        // parts until a lifecycle rule (AbortIncompleteMultipartUpload) reclaims them; the key stays absent.
        await this.client.abortMultipartUpload(this.bucket, name, uploadId).catch(() => undefined);
      }
      throw e;
    }
  }

  async writeFile(key: string, file: string): Promise<void> {
    const { size } = await fs.stat(file);
    await this.write(key, createReadStream(file, { highWaterMark: MiB }), size);
    await fs.rm(file, { force: true });
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.removeObject(this.bucket, this.object(key));
    } catch (e) {
      const code = s3Code(e);
      if (code === 'NoSuchKey' || code === 'NotFound') return;
      throw e;
    }
  }

  async *list(prefix = ''): AsyncIterable<BlobEntry> {
    const base = this.prefix ? `${this.prefix}/` : '';
    // ListObjects (v1) with a marker: every S3-compatible service pages it the same way (s3rver
    // cannot page ListObjectsV2: its continuation tokens use DES, which Node 17+ lacks).
    let marker = '';
    for (;;) {
      const res = await this.client.listObjectsQuery(this.bucket, base + prefix, marker, { Delimiter: '', MaxKeys: 1000 });
      let last = '';
      for (const o of res.objects) {
        if (o.name === undefined) continue;
        last = o.name;
        if (!o.name.startsWith(base) || o.name.startsWith(base + UPLOADS + '/')) continue;
        yield { key: o.name.slice(base.length), size: Number(o.size ?? 0), modified: o.lastModified ?? new Date(0) };
      }
      const truncated = (res.isTruncated as unknown) === true || (res.isTruncated as unknown) === 'true';
      const next = res.nextMarker || last;
      if (!truncated || !next || next === marker) return;
      marker = next;
    }
  }

  // Uploads in pieces --------------------------------------------------------------------
  // Each piece is an object of its own (`<prefix>/.uploads/<id>/<offset>`), readable at once, so
  // a node that did not see the earlier pieces can hash them to continue the upload. Parts of a
  // multipart upload could not serve that: S3 does not let anyone read them before completion.
  // Publishing copies inside S3 (CopyObject) when the upload is one piece, the usual case (docker,
  // podman and skopeo send a layer in one PATCH); several pieces are streamed into the blob through
  // this node (UploadPartCopy would avoid that on AWS, but s3rver, the S3 the tests run, lacks it).

  private uploadFolder(id: string): string {
    if (!UPLOAD_ID_RE.test(id)) throw new AppError('BAD_REQUEST', `Invalid upload id: ${id}`);
    return `${this.prefix ? this.prefix + '/' : ''}${UPLOADS}/${id}/`;
  }

  private async listObjects(prefix: string): Promise<Array<{ name: string; size: number; modified: Date }>> {
    const out: Array<{ name: string; size: number; modified: Date }> = [];
    let marker = '';
    for (;;) {
      const res = await this.client.listObjectsQuery(this.bucket, prefix, marker, { Delimiter: '', MaxKeys: 1000 });
      let last = '';
      for (const o of res.objects) {
        if (o.name === undefined) continue;
        last = o.name;
        if (o.name.startsWith(prefix)) out.push({ name: o.name, size: Number(o.size ?? 0), modified: o.lastModified ?? new Date(0) });
      }
      const truncated = (res.isTruncated as unknown) === true || (res.isTruncated as unknown) === 'true';
      const next = res.nextMarker || last;
      if (!truncated || !next || next === marker) return out;
      marker = next;
    }
  }

  /** The pieces that make up the upload, in order, each starting where the previous one ends. */
  private async pieces(id: string): Promise<Piece[]> {
    const folder = this.uploadFolder(id);
    const all = (await this.listObjects(folder))
      .map((o) => ({ ...o, offset: Number(o.name.slice(folder.length)) }))
      .filter((p) => Number.isSafeInteger(p.offset))
      .sort((a, b) => a.offset - b.offset);
    const out: Piece[] = [];
    let end = 0;
    for (const p of all) {
      if (p.offset !== end) break; // A gap (or a piece two nodes raced on): stop where the bytes are contiguous.
      out.push(p);
      end += p.size;
    }
    return out;
  }

  async appendedSize(id: string): Promise<number> {
    return (await this.pieces(id)).reduce((n, p) => n + p.size, 0);
  }

  async append(id: string, at: number, body: Readable): Promise<number> {
    const size = await this.appendedSize(id);
    if (size !== at) {
      body.resume();
      throw new AppError('RANGE_NOT_SATISFIABLE', `Upload ${id} has ${size} bytes; a piece at offset ${at} does not follow them`);
    }
    const n = await this.writeObject(this.uploadFolder(id) + String(at).padStart(16, '0'), `upload ${id}`, body);
    return at + n;
  }

  async readAppended(id: string, start: number): Promise<Readable> {
    const pieces = (await this.pieces(id)).filter((p) => p.offset + p.size > start && p.size > 0);
    const client = this.client;
    const bucket = this.bucket;
    async function* concat(): AsyncGenerator<Buffer> {
      for (const p of pieces) {
        const skip = Math.max(0, start - p.offset);
        const res = skip > 0 ? await client.getPartialObject(bucket, p.name, skip) : await client.getObject(bucket, p.name);
        for await (const c of res) yield c as Buffer;
      }
    }
    return Readable.from(concat(), { objectMode: false });
  }

  async publishAppended(id: string, key: string): Promise<void> {
    const name = this.object(key);
    const pieces = await this.pieces(id);
    const total = pieces.reduce((n, p) => n + p.size, 0);
    if (pieces.length === 1 && total <= MAX_COPY) {
      await this.client.copyObject(this.bucket, name, `/${this.bucket}/${pieces[0].name}`);
    } else {
      await this.writeObject(name, key, await this.readAppended(id, 0), total);
    }
    await this.deleteAppended(id);
  }

  async deleteAppended(id: string): Promise<void> {
    for (const o of await this.listObjects(this.uploadFolder(id))) {
      await this.client.removeObject(this.bucket, o.name).catch((e: unknown) => {
        const code = s3Code(e);
        if (code !== 'NoSuchKey' && code !== 'NotFound') throw e;
      });
    }
  }

  async *listAppended(): AsyncIterable<AppendedEntry> {
    const folder = `${this.prefix ? this.prefix + '/' : ''}${UPLOADS}/`;
    const byId = new Map<string, AppendedEntry>();
    for (const o of await this.listObjects(folder)) {
      const id = o.name.slice(folder.length).split('/')[0];
      if (!UPLOAD_ID_RE.test(id)) continue;
      const e = byId.get(id) ?? { id, size: 0, modified: new Date(0) };
      e.size += o.size;
      if (o.modified > e.modified) e.modified = o.modified;
      byId.set(id, e);
    }
    yield* byId.values();
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }
}
