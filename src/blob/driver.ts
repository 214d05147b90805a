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

/** An upload received over several requests, perhaps on several nodes: its bytes so far. */
export interface AppendedEntry {
  id: string;
  size: number;
  /** When the last piece arrived. */
  modified: Date;
}

/**
 * Uploads received in pieces (docker's chunked blob uploads) whose bytes live in the store itself
 * until they are published, so any node sharing the store can continue or finish them: no upload
 * state on a node's local disk. Ids are the caller's (`[A-Za-z0-9-]`). The bytes of a piece that
 * fails midway may or may not count (the size says what arrived).
 */
export interface BlobAppender {
  /** Bytes received so far; 0 for an upload nothing was appended to yet. */
  appendedSize(id: string): Promise<number>;
  /** Appends `body` at offset `at`, which must be the current size. Resolves with the new size. */
  append(id: string, at: number, body: Readable): Promise<number>;
  /** The upload's bytes from `start` to the end (to rebuild a hash state another node lacks). */
  readAppended(id: string, start: number): Promise<Readable>;
  /** Makes the whole upload the blob `key` (atomically) and removes the upload. */
  publishAppended(id: string, key: string): Promise<void>;
  /** Removes the upload; absent ones are not an error. */
  deleteAppended(id: string): Promise<void>;
  /** Every upload in the store (for the purge of abandoned ones). */
  listAppended(): AsyncIterable<AppendedEntry>;
}

export interface BlobDriver extends BlobReader, BlobWriter, BlobDeleter, BlobLister, BlobAppender {
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
