import { read as readFd } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type { FileRange } from '../blob/file-body.js';
import { KernelSendUnavailable, kernelSend, sendfileTarget, type KernelTransfer } from './sendfile-native.js';

/**
 * Bodies from this size go through sendfile(2) when the native helper is there (see
 * sendfile-native.ts); below it a thread start costs more than the one read and write it saves.
 */
export const SENDFILE_MIN = 64 * 1024;
/** A kernel transfer that makes no progress for this long (a client that stopped reading) is cut. */
const SEND_STALL_MS = 120_000;

/**
 * JavaScript path: read and write size. Each byte is copied page cache → buffer → socket; 2 MiB
 * reads into reused buffers cost about 0.4 CPU-s per GiB here, against 0.55–0.7 for a 1 MiB fs
 * stream piped into the response (a fresh buffer per chunk: an mmap, page faults
 * and a munmap each time, plus the pipeline's bookkeeping).
 */
export const SEND_CHUNK = 2 * 1024 * 1024;
/** Buffers one download holds at most: one being read while one is being written. */
export const SEND_DEPTH = 2;
/** Free buffers kept between downloads (beyond this they are left to the GC). */
const POOL_MAX = 8;

const pool: Buffer[] = [];

function acquire(want: number): Buffer {
  // A body smaller than a chunk with no free buffer: a buffer of its size, not pooled.
  return pool.pop() ?? Buffer.allocUnsafeSlow(want < SEND_CHUNK ? want : SEND_CHUNK);
}

function release(buf: Buffer): void {
  if (buf.length === SEND_CHUNK && pool.length < POOL_MAX) pool.push(buf);
}

/** Free pooled buffers now (for tests and memory accounting). */
export function pooledBuffers(): number {
  return pool.length;
}

/**
 * Writes the byte range of an open file as the body of `res` (status and headers already set,
 * Content-Length among them) and ends it. Reads with fs.read into pooled buffers and writes
 * them straight to the response; a buffer goes back to the pool only from its write callback
 * (the socket holds it until then). Backpressure is the number of buffers in flight: at most
 * SEND_DEPTH per download, whatever the client's speed, so memory stays bounded by the pool.
 * Closes the file once no read is in flight, whatever happens. Resolves when the response has
 * finished or the client went away (an aborted download is not an error for the server);
 * rejects only if the file fails before anything was sent.
 */
export function sendFileRange(res: ServerResponse, file: FileRange): Promise<void> {
  const length = file.end - file.start + 1;
  const socketFd = length >= SENDFILE_MIN ? sendfileTarget(res.socket) : null;
  return socketFd === null ? sendByReads(res, file) : sendByKernel(res, file, socketFd, length);
}

/**
 * The kernel path: the headers go out through Node, and once they have left its buffers the
 * native helper copies the range from the page cache to the socket with sendfile(2): what the
 * socket takes at once right here, the rest (if any) on a thread of its own; then Node ends the
 * response (nothing more to write: keep-alive carries on as usual).
 * Node writes nothing to the socket meanwhile (a pipelined next response waits for this one to
 * finish). Closing the response cancels the transfer; the file is closed once the thread is done
 * with it. A failure after the headers cuts the connection, as on the JavaScript path.
 */
function sendByKernel(res: ServerResponse, file: FileRange, socketFd: number, length: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const socket = res.socket!;
    let transfer: KernelTransfer | null = null;
    let closed = false;
    const onClose = (): void => {
      closed = true;
      transfer?.cancel(); // its callback closes the file and settles
    };
    res.on('close', onClose);
    const finish = (): void => {
      res.off('close', onClose);
      resolve();
    };
    const begin = (): void => {
      if (closed || socket.destroyed) {
        file.close();
        finish();
        return;
      }
      // The status line and headers must be on the wire before the body: wait until Node's
      // buffer for this socket is empty (it almost always is at once).
      if (socket.writableLength > 0) {
        setTimeout(begin, 1);
        return;
      }
      try {
        transfer = kernelSend(socketFd, file.fd, file.start, length, SEND_STALL_MS, (errno) => {
          transfer = null;
          file.close();
          if (errno === 0) {
            res.end(finish);
            return;
          }
          // Cancelled (the response closed) or failed part-way: the connection is cut.
          if (!closed) res.destroy(new Error(errno === -1 ? `File ended before byte ${file.end}` : `sendfile failed (errno ${errno})`));
          finish();
        });
      } catch (e) {
        // No thread or descriptor to spare: the JavaScript path carries on from what went already.
        res.off('close', onClose);
        if (e instanceof KernelSendUnavailable) file.start += e.sent;
        sendByReads(res, file).then(resolve, () => resolve());
      }
    };
    res.flushHeaders();
    begin();
  });
}

/** The JavaScript path: reads into pooled buffers, written to the response. */
function sendByReads(res: ServerResponse, file: FileRange): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let pos = file.start;
    const last = file.end;
    let reading = false;
    let writing = 0; // buffers handed to res.write whose callback has not come yet
    let stopped = false; // client gone, file error, or all bytes written
    let settled = false;

    const settle = (err?: Error): void => {
      if (settled) return;
      settled = true;
      res.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const stop = (): void => {
      stopped = true;
      if (!reading) file.close();
    };
    const fail = (err: Error): void => {
      stop();
      if (!res.headersSent) {
        settle(err);
        return;
      }
      // Bytes already on the wire: the only honest signal left is a cut connection.
      res.destroy(err);
      settle();
    };
    function onClose(): void {
      // The connection closed before the body ended (client abort, or destroy): stop reading.
      stop();
      settle();
    }
    res.on('close', onClose);

    const pump = (): void => {
      if (stopped || reading) return;
      if (pos > last) {
        stop();
        res.end(() => settle());
        return;
      }
      if (writing >= SEND_DEPTH) return; // SEND_DEPTH buffers held at most: reads stay ahead of the writes by one
      const want = Math.min(SEND_CHUNK, last + 1 - pos);
      const buf = acquire(want);
      reading = true;
      readFd(file.fd, buf, 0, Math.min(want, buf.length), pos, (err, got) => {
        reading = false;
        if (stopped) {
          file.close();
          release(buf);
          return;
        }
        if (err || got === 0) {
          release(buf);
          fail(err ?? new Error(`File ended at byte ${pos}, before byte ${last}`));
          return;
        }
        pos += got;
        writing++;
        res.write(got === buf.length ? buf : buf.subarray(0, got), (werr) => {
          writing--;
          release(buf);
          if (werr) {
            // The connection failed under this write: read no more ('close' follows).
            stop();
            settle();
            return;
          }
          pump();
        });
        pump();
      });
    };
    pump();
  });
}
