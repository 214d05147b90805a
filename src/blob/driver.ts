import type { Readable } from 'node:stream';

/** Byte range, both ends inclusive (as in HTTP Range). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStat {
  size: number;
  modified: Date;
}

export interface BlobEntry extends BlobStat {
  key: string;
}

/** Small capabilities; code that only reads takes only the reader. */
export interface BlobStatter {
  stat(key: string): Promise<BlobStat | null>;
}
export interface BlobReader extends BlobStatter {
  /** Opens the bytes (or a range of them); throws NOT_FOUND when the key is absent. */
  read(key: string, range?: ByteRange): Promise<Readable>;
}
export interface BlobWriter {
  /**
   * Streams `body` into `key`, atomically: the key is either absent or holds every byte.
   * `size` is a hint (S3 needs no buffering to know it). Resolves with the bytes written.
   */
  write(key: string, body: Readable, size?: number): Promise<number>;
  /** Publishes a complete local file under `key`; the file is consumed (moved when possible). */
  writeFile(key: string, file: string): Promise<void>;
}
export interface BlobDeleter {
  /** Deletes `key`; absent keys are not an error. */
  delete(key: string): Promise<void>;
}
export interface BlobLister {
  list(prefix?: string): AsyncIterable<BlobEntry>;
}

export interface BlobDriver extends BlobReader, BlobWriter, BlobDeleter, BlobLister {
  readonly type: string;
  /** Verifies the store is usable (directory writable, bucket reachable); throws otherwise. */
  check(): Promise<void>;
  /** Free bytes where the backend can tell (file); null otherwise. */
  available?(): Promise<number | null>;
  close?(): Promise<void>;
  /** Removes temp files of writes that never finished (a crash) older than `olderThanMs`; how many. */
  sweepTemp?(olderThanMs: number): Promise<number>;
  /**
   * `write` hands each buffer of the body back to the ingest pool once written (a FileSink), so
   * the body may come re-cut into pooled buffers (see HashingStream); otherwise it comes as read.
   */
  readonly returnsIngestBuffers?: boolean;
}
