import { close as closeFd, open as openFd, write as writeFd } from 'node:fs';
import { Writable } from 'node:stream';

/**
 * The 1 MiB buffers bodies are re-cut into on their way in (HashingStream), reused: a file sink
 * hands each back once it is written. Fresh buffers per MiB, or the socket's own 64 KiB chunks
 * passed on, were promoted by the GC while queued for the disk and then counted towards the old
 * generation's limit (a full GC every 100–150 ms on a busy machine). A buffer that goes anywhere
 * else (an S3 upload) is simply never handed back and left to the GC.
 */
export const INGEST_BUFFER = 1024 * 1024;
/** Free buffers kept between bodies. */
const KEEP = 32;

const owned = new WeakSet<ArrayBufferLike>();
const free: Buffer[] = [];

export function takeIngestBuffer(): Buffer {
  const b = free.pop();
  if (b) return b;
  const fresh = Buffer.allocUnsafeSlow(INGEST_BUFFER);
  owned.add(fresh.buffer);
  return fresh;
}

/** Gives a buffer (or a view of one) back: only pool buffers are kept, and only when nothing else holds them. */
export function giveIngestBuffer(view: Uint8Array): void {
  const ab = view.buffer;
  if (!owned.has(ab) || free.length >= KEEP) return;
  free.push(Buffer.from(ab, 0, INGEST_BUFFER));
}

/** Free pool buffers now (tests). */
export function freeIngestBuffers(): number {
  return free.length;
}

/**
 * A Writable into a file ('w' or 'a'), writing each chunk in turn (a short write continues
 * where it stopped) and handing pool buffers back as soon as they are written. `bytesWritten` counts what reached the file.
 */
export class FileSink extends Writable {
  private fd = -1;
  bytesWritten = 0;

  constructor(
    private readonly path: string,
    private readonly flags: 'w' | 'a' = 'w',
  ) {
    super({ highWaterMark: 2 * INGEST_BUFFER });
  }

  override _construct(cb: (err?: Error | null) => void): void {
    openFd(this.path, this.flags, 0o644, (err, fd) => {
      if (err) return cb(err);
      this.fd = fd;
      cb();
    });
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const step = (off: number): void => {
      writeFd(this.fd, chunk, off, chunk.length - off, null, (err, n) => {
        if (err) return cb(err);
        this.bytesWritten += n;
        if (off + n < chunk.length) return step(off + n);
        giveIngestBuffer(chunk);
        cb();
      });
    };
    step(0);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.fd < 0) return cb(err);
    const fd = this.fd;
    this.fd = -1;
    closeFd(fd, (cerr) => cb(err ?? cerr));
  }

  override _final(cb: (err?: Error | null) => void): void {
    const fd = this.fd;
    this.fd = -1;
    closeFd(fd, cb);
  }
}
