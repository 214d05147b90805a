import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
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

type Algo = 'sha256' | 'sha1' | 'md5';
const ALGOS: Algo[] = ['sha256', 'sha1', 'md5'];

/** Bodies below this are hashed inline: a worker round trip costs more than it saves. */
const OFFLOAD_MIN_BYTES = 1024 * 1024;
/** Bytes in flight to the worker before the stream waits for it (bounds memory). */
const MAX_IN_FLIGHT = 8 * 1024 * 1024;
/**
 * Chunks for the worker are copied into batches of this size (the chunk itself continues
 * downstream): one copy and one message per MiB instead of a clone per 64 KiB socket read.
 */
const BATCH_BYTES = 1024 * 1024;

/**
 * One shared hashing worker. Which digests it computes is decided once by timing each
 * algorithm here, so the two threads finish together: on a CPU with SHA extensions md5 is the
 * slowest and goes alone to the worker; without them sha256 stays on the main thread and
 * sha1+md5 go to the worker.
 */
class HashWorker {
  private worker?: Worker;
  private nextId = 1;
  private readonly acks = new Map<number, (bytes: number) => void>();
  private readonly dones = new Map<number, (d: Record<string, string>) => void>();
  private split?: { main: Algo[]; worker: Algo[] };
  private failed = false;
  /** Streams in progress: the worker keeps the process alive only while there are some. */
  private active = 0;

  private hold(): void {
    if (this.active++ === 0) this.worker?.ref();
  }
  private release(): void {
    if (--this.active === 0) this.worker?.unref();
  }

  /** The split between threads; null when no worker can be used. */
  plan(): { main: Algo[]; worker: Algo[] } | null {
    if (this.failed) return null;
    if (!this.split) this.split = calibrate();
    if (this.split.worker.length === 0) return null;
    if (!this.worker) {
      try {
        this.worker = new Worker(new URL('./hash-worker.js', import.meta.url));
        this.worker.on('message', (m: { op: string; id: number; bytes?: number; digests?: Record<string, string> }) => {
          if (m.op === 'ack') this.acks.get(m.id)?.(m.bytes!);
          else if (m.op === 'done') {
            this.release();
            this.dones.get(m.id)?.(m.digests!);
            this.dones.delete(m.id);
            this.acks.delete(m.id);
          }
        });
        this.worker.on('error', () => {
          this.failed = true;
          this.worker = undefined;
        });
        // After the listeners: adding a 'message' listener refs the port again.
        this.worker.unref();
      } catch {
        this.failed = true;
        return null;
      }
    }
    return this.split;
  }

  start(algorithms: Algo[], onAck: (bytes: number) => void): number {
    const id = this.nextId++;
    this.hold();
    this.acks.set(id, onAck);
    this.worker!.postMessage({ op: 'start', id, algorithms });
    return id;
  }

  /** Hands a filled batch to the worker, transferred (not cloned): the batch was the one copy. */
  data(id: number, batch: Uint8Array): void {
    this.worker!.postMessage({ op: 'data', id, chunk: batch }, [batch.buffer as ArrayBuffer]);
  }

  end(id: number): Promise<Record<string, string>> {
    return new Promise((resolve) => {
      this.dones.set(id, resolve);
      this.worker!.postMessage({ op: 'end', id });
    });
  }

  abort(id: number): void {
    if (this.acks.has(id) || this.dones.has(id)) this.release();
    this.acks.delete(id);
    this.dones.delete(id);
    this.worker?.postMessage({ op: 'abort', id });
  }
}

function calibrate(): { main: Algo[]; worker: Algo[] } {
  const buf = Buffer.alloc(2 * 1024 * 1024, 0x5a);
  const cost: Record<Algo, number> = { sha256: 0, sha1: 0, md5: 0 };
  for (const a of ALGOS) {
    const t = process.hrtime.bigint();
    createHash(a).update(buf).digest();
    cost[a] = Number(process.hrtime.bigint() - t);
  }
  // Choose the worker's set minimising the slower thread; the main thread also moves the bytes,
  // so it is charged a little extra.
  let best = { main: ALGOS, worker: [] as Algo[], t: Infinity };
  for (let mask = 1; mask < 8; mask++) {
    const worker = ALGOS.filter((_, i) => mask & (1 << i));
    const main = ALGOS.filter((_, i) => !(mask & (1 << i)));
    const t = Math.max(main.reduce((s, a) => s + cost[a], 0) * 1.15, worker.reduce((s, a) => s + cost[a], 0));
    if (t < best.t) best = { main, worker, t };
  }
  return { main: best.main, worker: best.worker };
}

const pool = new HashWorker();

/**
 * Passes bytes through unchanged while computing sha256, sha1 and md5 and counting them, so
 * every byte is hashed exactly once on its way to the store. Large bodies share the hashing
 * with a worker thread. Fails the stream when the body is longer than allowed; a short body
 * fails at the end.
 */
export class DigestStream extends Transform {
  private readonly mainHashes: Array<[Algo, Hash]>;
  private readonly workerAlgos: Algo[] = [];
  private workerId = 0;
  private inFlight = 0;
  private batch?: Uint8Array;
  private batchLen = 0;
  private waiting?: () => void;
  private bytes = 0;
  private result?: Digests;

  constructor(private readonly limits: DigestLimits = {}) {
    super({ highWaterMark: 256 * 1024 });
    const size = limits.expectedSize;
    const plan = size === undefined || size >= OFFLOAD_MIN_BYTES ? pool.plan() : null;
    const main = plan ? plan.main : ALGOS;
    this.mainHashes = main.map((a) => [a, createHash(a)]);
    if (plan) {
      this.workerAlgos = plan.worker;
      this.workerId = pool.start(plan.worker, (n) => {
        this.inFlight -= n;
        if (this.inFlight <= MAX_IN_FLIGHT / 2 && this.waiting) {
          const w = this.waiting;
          this.waiting = undefined;
          w();
        }
      });
    }
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
    if (this.workerId) this.toWorker(chunk);
    for (const [, h] of this.mainHashes) h.update(chunk);
    if (this.inFlight > MAX_IN_FLIGHT) {
      this.waiting = () => cb(null, chunk);
      return;
    }
    cb(null, chunk);
  }

  private toWorker(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      this.batch ??= new Uint8Array(new ArrayBuffer(BATCH_BYTES));
      const n = Math.min(chunk.length - off, BATCH_BYTES - this.batchLen);
      this.batch.set(chunk.subarray(off, off + n), this.batchLen);
      this.batchLen += n;
      off += n;
      if (this.batchLen === BATCH_BYTES) this.sendBatch();
    }
  }

  private sendBatch(): void {
    if (!this.batch || this.batchLen === 0) return;
    const full = this.batchLen === this.batch.length ? this.batch : this.batch.slice(0, this.batchLen);
    pool.data(this.workerId, full);
    this.inFlight += this.batchLen;
    this.batch = undefined;
    this.batchLen = 0;
  }

  override _flush(cb: TransformCallback): void {
    const { expectedSize } = this.limits;
    if (expectedSize !== undefined && this.bytes !== expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is truncated: received ${this.bytes} of ${expectedSize} declared bytes`));
      return;
    }
    const digests: Record<string, string> = {};
    for (const [a, h] of this.mainHashes) digests[a] = h.digest('hex');
    const finish = (more: Record<string, string>) => {
      const all = { ...digests, ...more };
      this.result = { sha256: all.sha256, sha1: all.sha1, md5: all.md5, size: this.bytes };
      cb();
    };
    if (!this.workerId) return finish({});
    this.sendBatch();
    const id = this.workerId;
    this.workerId = 0;
    pool.end(id).then(finish, (e) => cb(e));
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.workerId) pool.abort(this.workerId);
    this.workerId = 0;
    cb(err);
  }

  get size(): number {
    return this.bytes;
  }

  /** The digests; available once the stream has ended. */
  digests(): Digests {
    if (!this.result) throw new Error('DigestStream: digests() before the stream ended');
    return this.result;
  }
}
