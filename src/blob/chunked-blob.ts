import { createReadStream, promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AppError, isAppError, outOfSpace } from '../errors.js';
import { HashingStream, Hasher, type Digests } from './digest-stream.js';
import { FileSink } from './ingest-buffers.js';

const MiB = 1024 * 1024;
/** Hash states kept in memory; beyond this the least recently used idle one is dropped (rebuilt from its file if needed). */
const MAX_STATES = 256;

/**
 * Refusal of a chunk: another chunk of the same upload is being received, or the chunk does not
 * start where the bytes received so far end. `size` is the current size.
 */
export class ChunkRefused extends AppError {
  constructor(
    message: string,
    readonly size: number,
  ) {
    super('RANGE_NOT_SATISFIABLE', message);
  }
}

/**
 * A blob received in pieces (a chunked upload): each piece is appended to a local file while it
 * is hashed, once, as it arrives; `finish` gives the digests without reading the file again, and
 * the file is then published with `BlobService.stageFile` (a rename on a file store).
 *
 * The file is the truth; the hash state is a cache in this process. Bytes the state has not seen
 * (appended by another node, or before a restart) are hashed from the file first: correct, just
 * slower. Pieces are received one at a time: a second one while one is in progress is refused.
 */
export class ChunkedBlob {
  private hasher?: Hasher;
  /** Bytes of the file the hasher has seen. */
  private hashed = 0;
  private busy = false;
  private closed = false;
  lastUsed = Date.now();

  constructor(
    readonly file: string,
    /** Throws when no new bytes may be written (the disk is nearly full). */
    private readonly guard: () => Promise<void> = async () => undefined,
  ) {}

  get inProgress(): boolean {
    return this.busy;
  }

  /** Bytes this process hashed from the file rather than as they arrived (catch-ups); for tests and logs. */
  rehashed = 0;

  private async lock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) {
      const size = await fs.stat(this.file).then((s) => s.size, () => 0);
      throw new ChunkRefused('Another chunk of this upload is being received; retry when it is complete', size);
    }
    this.busy = true;
    this.lastUsed = Date.now();
    try {
      return await fn();
    } finally {
      if (this.closed) this.drop();
      this.hasher?.pause();
      this.busy = false;
      this.lastUsed = Date.now();
    }
  }

  private drop(): void {
    this.hasher?.abort();
    this.hasher = undefined;
    this.hashed = 0;
  }

  /** Brings the hash state up to the file's current size; returns that size. */
  private async catchUp(): Promise<number> {
    const size = await fs.stat(this.file).then(
      (s) => s.size,
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') throw new AppError('NOT_FOUND', 'The upload is gone (cancelled or finished)');
        throw e;
      },
    );
    if (!this.hasher || this.hashed > size) {
      this.drop();
      this.hasher = new Hasher();
    }
    if (this.hashed < size) {
      const h = this.hasher;
      try {
        for await (const c of createReadStream(this.file, { start: this.hashed, end: size - 1, highWaterMark: MiB })) {
          await h.update(c as Buffer);
          this.rehashed += (c as Buffer).length;
        }
      } catch (e) {
        this.drop();
        throw e;
      }
      if (h.size !== size) {
        this.drop();
        throw new AppError('CONFLICT', 'The upload changed while it was being read; retry');
      }
      this.hashed = size;
    }
    return size;
  }

  /**
   * Appends `body`, hashing it on the way. `at`: the offset the piece must start at (else
   * ChunkRefused); `maxSize`: the largest total accepted. Resolves with the new size. On any
   * failure the bytes that reached the file stay (the size says what arrived); the hash state is
   * dropped and rebuilt from the file when next needed.
   */
  append(body: Readable, opts: { at?: number; maxSize?: number } = {}): Promise<number> {
    return this.lock(async () => {
      const size = await this.catchUp();
      if (opts.at !== undefined && opts.at !== size) {
        body.resume();
        throw new ChunkRefused(`Chunk must start at offset ${size}`, size);
      }
      await this.guard();
      const h = this.hasher!;
      const { maxSize } = opts;
      const hash = new HashingStream(
        h,
        (total) => (maxSize !== undefined && total > maxSize ? new AppError('PAYLOAD_TOO_LARGE', `Upload exceeds the limit of ${maxSize} bytes`) : null),
        true, // into a FileSink
      );
      try {
        await pipeline(body, hash, new FileSink(this.file, 'a'));
      } catch (e) {
        this.drop();
        if (isAppError(e)) throw e;
        const full = outOfSpace(e);
        if (full) {
          // The server's fault, not the client's: the chunk leaves nothing, so its space is free again.
          await fs.truncate(this.file, size).catch(() => undefined);
          throw full;
        }
        throw new AppError('BAD_REQUEST', 'Upload chunk aborted before it was complete', { cause: e });
      }
      const now = (await fs.stat(this.file)).size;
      this.hashed = h.size;
      // Someone else appended at the same time (another node): the state no longer matches the file.
      if (now !== h.size) this.drop();
      return now;
    });
  }

  /** The digests of everything received (the file stays where it is). The state is consumed. */
  finish(): Promise<Digests> {
    return this.lock(async () => {
      await this.catchUp();
      const h = this.hasher!;
      this.hasher = undefined;
      this.hashed = 0;
      return h.digest();
    });
  }

  /** Drops the hash state (the upload is cancelled or over; if a piece is in progress, when it ends). */
  abort(): void {
    this.closed = true;
    if (!this.busy) this.drop();
  }
}

/**
 * The chunked blobs of this process by upload id. Bounded: the least recently used idle state
 * is dropped (its upload continues; the state is rebuilt from the file when it is next used).
 */
export class ChunkedBlobs {
  private readonly map = new Map<string, ChunkedBlob>();

  constructor(private readonly guard?: () => Promise<void>) {}

  get(id: string, file: string): ChunkedBlob {
    let b = this.map.get(id);
    if (b && b.file !== file) {
      b.abort();
      b = undefined;
    }
    if (!b) {
      b = new ChunkedBlob(file, this.guard);
      this.map.set(id, b);
      if (this.map.size > MAX_STATES) this.evict();
    }
    return b;
  }

  /** The upload is over (published, refused, cancelled, purged). */
  remove(id: string): void {
    const b = this.map.get(id);
    if (!b) return;
    this.map.delete(id);
    b.abort();
  }

  private evict(): void {
    let oldest: [string, ChunkedBlob] | undefined;
    for (const e of this.map) if (!e[1].inProgress && (!oldest || e[1].lastUsed < oldest[1].lastUsed)) oldest = e;
    if (oldest) this.remove(oldest[0]);
  }

  get size(): number {
    return this.map.size;
  }
}
