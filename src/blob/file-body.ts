import { closeSync, read as readFd, readSync } from 'node:fs';
import { Readable } from 'node:stream';

/** Chunk of the generic (Readable) path; the HTTP fast path has its own pooled buffers. */
const READ_CHUNK = 1024 * 1024;

/** An open file range that the fast path may take over: the descriptor and both ends (inclusive). */
export interface FileRange {
  fd: number;
  start: number;
  end: number;
  /** Closes the descriptor (once; later calls do nothing). */
  close(): void;
}

/**
 * The bytes of a stored file, from an open descriptor: a plain Readable for any consumer, and
 * `takeFile()` for a sender that reads the descriptor itself (src/http/send-file.ts writes them to
 * the socket from a small pool of reused buffers instead of a fresh buffer per chunk and a
 * stream pipeline). The descriptor is closed exactly once: at the end, on destroy, or by the
 * taker; never while a read is in flight (a closed fd number can be reused by another open).
 */
export class FileBody extends Readable {
  private pos: number;
  private reading = false;
  private fdClosed = false;
  private taken = false;
  private afterRead: (() => void) | null = null;

  constructor(
    private readonly fd: number,
    private readonly start: number,
    /** Last byte, inclusive. */
    private readonly end: number,
  ) {
    super({ highWaterMark: READ_CHUNK });
    this.pos = start;
  }

  /** Length of the range in bytes. */
  get byteLength(): number {
    return this.end - this.start + 1;
  }

  /**
   * Hands the descriptor to the caller, who then must call `close()` on it; null once this
   * stream has started reading or was destroyed (use it as a stream then).
   */
  takeFile(): FileRange | null {
    if (this.taken || this.fdClosed || this.reading || this.pos !== this.start || this.destroyed) return null;
    this.taken = true;
    const fd = this.fd;
    return {
      fd,
      start: this.start,
      end: this.end,
      close: () => this.closeFd(),
    };
  }

  /**
   * The whole range read at once, when it is at most `maxBytes` and nothing was read yet (else
   * null: read it as a stream). Read synchronously: for a small file the read is one copy from
   * the page cache, cheaper than the two thread hand-offs of an asynchronous read and close (see
   * FileBlobDriver.read). Closes the descriptor; the stream ends empty. A file shorter than the
   * range is an error, as on the stream. readSmall uses it.
   */
  readWhole(maxBytes: number): Buffer | null {
    const length = this.byteLength;
    if (length > maxBytes || this.taken || this.fdClosed || this.reading || this.pos !== this.start || this.destroyed) return null;
    this.taken = true;
    // Its own memory (not a slice of the shared pool): callers may keep it in a cache.
    const buf = Buffer.allocUnsafeSlow(length);
    try {
      let got = 0;
      while (got < length) {
        const n = readSync(this.fd, buf, got, length - got, this.start + got);
        if (n === 0) throw new Error(`File ended at byte ${this.start + got}, before byte ${this.end}`);
        got += n;
      }
    } finally {
      this.closeFd();
      this.push(null);
    }
    return buf;
  }

  /** Closed synchronously: close(2) of a read-only descriptor does no I/O (see FileBlobDriver.read). */
  private closeFd(): void {
    if (this.fdClosed) return;
    this.fdClosed = true;
    try {
      closeSync(this.fd);
    } catch {
      /* nothing to do: the number is released either way */
    }
  }

  override _read(): void {
    if (this.taken) return;
    const n = Math.min(READ_CHUNK, this.end + 1 - this.pos);
    if (n <= 0) {
      this.closeFd();
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(n);
    this.reading = true;
    readFd(this.fd, buf, 0, n, this.pos, (err, got) => {
      this.reading = false;
      const after = this.afterRead;
      if (after) {
        this.afterRead = null;
        after();
        return;
      }
      if (err) {
        this.destroy(err);
        return;
      }
      if (got === 0) {
        this.destroy(new Error(`File ended at byte ${this.pos}, before byte ${this.end}`));
        return;
      }
      this.pos += got;
      this.push(got === n ? buf : buf.subarray(0, got));
    });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.taken) {
      cb(err);
      return;
    }
    if (this.reading) {
      this.afterRead = () => {
        this.closeFd();
        cb(err);
      };
      return;
    }
    this.closeFd();
    cb(err);
  }
}
