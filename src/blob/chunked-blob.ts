import { pipeline, type Readable } from 'node:stream';
import { AppError, isAppError, outOfSpace } from '../errors.js';
import { HashingStream, Hasher, type Digests } from './digest-stream.js';
import type { BlobAppender, BlobDriver } from './driver.js';
import type { DigestAlgorithm } from './digest-set.js';
/** Hash states kept in memory; beyond this the least recently used idle one is dropped (rebuilt from the store if needed). */
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
 * A blob received in pieces (a chunked upload): each piece is appended to the upload in the blob
 * store (`BlobAppender`) while it is hashed, once, as it arrives; `finish` gives the digests without
 * reading the bytes again, and the upload is then published with `BlobService.stageAppended` (a
 * rename on a file store, a copy inside S3).
 *
 * The store is the truth; the hash state is a cache in this process. Bytes the state has not seen
 * (appended by another node, or before a restart) are read back and hashed first: correct, just
 * slower. Pieces are received one at a time: a second one while one is in progress is refused.
 */
export class ChunkedBlob {
  private hasher?: Hasher;
  /** Bytes of the upload the hasher has seen. */
  private hashed = 0;
  private busy = false;
  private closed = false;
  lastUsed = Date.now();

  constructor(
    readonly store: BlobAppender & Pick<BlobDriver, 'returnsIngestBuffers'>,
    readonly id: string,
    /** Throws when no new bytes may be written (the disk is nearly full). */
    private readonly guard: () => Promise<void> = async () => undefined,
    /** The digests to compute (the repository format's declared set; default sha256, sha1, md5). */
    private readonly digests?: readonly DigestAlgorithm[],
  ) {}

  get inProgress(): boolean {
    return this.busy;
  }

  /** Bytes this process read back from the store rather than as they arrived (catch-ups); for tests and logs. */
  rehashed = 0;

  private async lock<T>(fn: () => Promise<T>): Promise<T> {
    if (this.busy) {
      const size = await this.store.appendedSize(this.id).catch(() => 0);
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

  /** Brings the hash state up to the upload's current size; returns that size. */
  private async catchUp(): Promise<number> {
    const size = await this.store.appendedSize(this.id);
    if (!this.hasher || this.hashed > size) {
      this.drop();
      this.hasher = new Hasher(undefined, this.digests);
    }
    if (this.hashed < size) {
      const h = this.hasher;
      try {
        for await (const c of await this.store.readAppended(this.id, this.hashed)) {
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
   * failure the bytes that reached the store may stay (the size says what arrived); the hash state
   * is dropped and rebuilt from the store when next needed.
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
        this.store.returnsIngestBuffers === true, // into a FileSink
      );
      let now: number;
      try {
        // pipeline: an error or early end of the body fails the store's write too.
        now = await this.store.append(
          this.id,
          size,
          pipeline(body, hash, () => undefined),
        );
      } catch (e) {
        this.drop();
        if (isAppError(e)) throw e;
        // The server's fault, not the client's (the store dropped the piece's bytes, see append).
        const full = outOfSpace(e);
        if (full) throw full;
        throw new AppError('BAD_REQUEST', 'Upload chunk aborted before it was complete', { cause: e });
      }
      this.hashed = h.size;
      // Someone else appended at the same time (another node): the state no longer matches the store.
      if (now !== h.size) this.drop();
      return now;
    });
  }

  /** The digests of everything received (the bytes stay where they are). The state is consumed. */
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
 * is dropped (its upload continues; the state is rebuilt from the store when it is next used).
 */
export class ChunkedBlobs {
  private readonly map = new Map<string, ChunkedBlob>();

  get(id: string, store: ChunkedBlob['store'], guard?: () => Promise<void>, digests?: readonly DigestAlgorithm[]): ChunkedBlob {
    let b = this.map.get(id);
    if (b && b.store !== store) {
      b.abort();
      b = undefined;
    }
    if (!b) {
      b = new ChunkedBlob(store, id, guard, digests);
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
