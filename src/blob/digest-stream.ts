import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../errors.js';

export interface Digests {
  sha256: string;
  sha1: string;
  md5: string;
  size: number;
}

export interface DigestLimits {
  /** Exact size the body must have (Content-Length, a manifest's size): fewer or more bytes is an error. */
  expectedSize?: number;
  /** Largest body accepted. */
  maxSize?: number;
}

/**
 * Passes bytes through unchanged while computing sha256, sha1 and md5 and counting them, so
 * every byte is hashed exactly once on its way to the store. Fails the stream when the body is
 * longer than allowed; `digests()` after the end checks for a short body.
 */
export class DigestStream extends Transform {
  private readonly h256: Hash = createHash('sha256');
  private readonly h1: Hash = createHash('sha1');
  private readonly hmd5: Hash = createHash('md5');
  private bytes = 0;
  private result?: Digests;

  constructor(private readonly limits: DigestLimits = {}) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    const { expectedSize, maxSize } = this.limits;
    if (expectedSize !== undefined && this.bytes > expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is longer than the declared ${expectedSize} bytes`));
      return;
    }
    if (maxSize !== undefined && this.bytes > maxSize) {
      cb(new AppError('PAYLOAD_TOO_LARGE', `Body exceeds the limit of ${maxSize} bytes`));
      return;
    }
    this.h256.update(chunk);
    this.h1.update(chunk);
    this.hmd5.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    const { expectedSize } = this.limits;
    if (expectedSize !== undefined && this.bytes !== expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is truncated: received ${this.bytes} of ${expectedSize} declared bytes`));
      return;
    }
    this.result = {
      sha256: this.h256.digest('hex'),
      sha1: this.h1.digest('hex'),
      md5: this.hmd5.digest('hex'),
      size: this.bytes,
    };
    cb();
  }

  get size(): number {
    return this.bytes;
  }

  digests(): Digests {
    if (!this.result) throw new Error('DigestStream: digests() before the stream ended');
    return this.result;
  }
}
