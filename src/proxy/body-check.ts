import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { IncomingHttpHeaders } from 'node:http';
import type { Digests } from '../blob/digest-stream.js';
import type { ExpectedContent } from '../repository/format.js';

/**
 * A body that ends when the connection closes (no Content-Length, not chunked) looks the same
 * whole or cut short: HTTP cannot tell. Only what the bytes or the format's metadata state can.
 */
export function isCloseDelimited(headers: IncomingHttpHeaders): boolean {
  if (headers['content-length'] !== undefined) return false;
  return !/(^|,)\s*chunked\s*$/i.test(String(headers['transfer-encoding'] ?? ''));
}

export type GzipEnd = 'complete' | 'truncated' | 'not-gzip';

/**
 * Passes a body through unchanged while inflating it on the side when it starts like gzip, to
 * learn whether the gzip stream ends properly (its trailer holds the CRC and the length, so a
 * complete stream proves a complete body). The output is thrown away; nothing is buffered.
 */
export class GzipEndCheck extends Transform {
  private gunzip: zlib.Gunzip | null = null;
  private head: Buffer | null = Buffer.alloc(0);
  private outcome: GzipEnd = 'not-gzip';
  private failed: NodeJS.ErrnoException | null = null;

  /** Known once the stream has ended. */
  get result(): GzipEnd {
    return this.outcome;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.head) {
      // The magic needs two bytes; a first chunk of one byte is possible.
      const head = Buffer.concat([this.head, chunk]);
      if (head.length < 2) {
        this.head = head;
        return cb(null, chunk);
      }
      this.head = null;
      if (head[0] === 0x1f && head[1] === 0x8b) {
        this.gunzip = zlib.createGunzip();
        this.gunzip.on('error', (e) => (this.failed ??= e));
        this.gunzip.resume();
        return this.feed(head, cb, chunk);
      }
      return cb(null, chunk);
    }
    if (!this.gunzip || this.failed) return cb(null, chunk);
    this.feed(chunk, cb, chunk);
  }

  private feed(data: Buffer, cb: TransformCallback, pass: Buffer): void {
    const g = this.gunzip!;
    if (g.write(data) || this.failed) return cb(null, pass);
    // A stream that fails while full never drains.
    const go = () => {
      g.off('drain', go);
      g.off('error', go);
      cb(null, pass);
    };
    g.on('drain', go);
    g.on('error', go);
  }

  override _flush(cb: TransformCallback): void {
    const g = this.gunzip;
    if (!g) return cb();
    let settled = false;
    const settle = () => {
      if (settled) return;
      settled = true;
      const e = this.failed;
      // zlib's "unexpected end of file": the stream stopped before its trailer.
      this.outcome = !e ? 'complete' : e.code === 'Z_BUF_ERROR' ? 'truncated' : 'not-gzip';
      cb();
    };
    if (this.failed) return settle();
    g.once('end', settle);
    g.once('error', settle);
    g.end();
  }
}

/**
 * Why the received body is not what the format's metadata says it is (size or digest), or null.
 * Digests the core does not compute are not compared.
 */
export function expectedMismatch(d: Digests, expected: ExpectedContent | null): string | null {
  if (!expected) return null;
  if (expected.size !== undefined && expected.size !== d.size) return `${d.size} bytes received, ${expected.size} expected`;
  for (const k of ['sha256', 'sha1'] as const) {
    const want = expected[k]?.toLowerCase();
    if (want && want !== d[k]) return `${k} ${d[k]} received, ${want} expected`;
  }
  return null;
}

/** Whether an expectation names anything this process can check. */
export function verifiable(expected: ExpectedContent | null): boolean {
  return !!expected && (expected.size !== undefined || !!expected.sha256 || !!expected.sha1);
}
