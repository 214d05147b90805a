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
/**
 * The bytes for the worker go through a fixed set of 1 MiB buffers, transferred to it and back:
 * one copy and one message per MiB, nothing allocated per chunk (fresh buffers per batch were
 * left for the idle worker isolate to collect: about 100 MB of resident memory). The set also
 * bounds the bytes in flight. (SharedArrayBuffer slots were slower: V8 copies into shared memory
 * with relaxed atomics.)
 */
const SLOT_BYTES = 1024 * 1024;
const SLOTS = 16;

/**
 * One shared hashing worker. Which digests it computes is decided once by timing each
 * algorithm here, so the two threads finish together: on a CPU with SHA extensions md5 is the
 * slowest and goes alone to the worker; without them sha256 stays on the main thread and
 * sha1+md5 go to the worker.
 */
class HashWorker {
  private worker?: Worker;
  private nextId = 1;
  private readonly free: ArrayBuffer[] = [];
  /** Buffers with the worker now; at most SLOTS (buffers being filled by streams are not counted). */
  private inFlight = 0;
  private readonly slotWaiters: Array<(buffer: ArrayBuffer) => void> = [];
  private readonly dones = new Map<number, (d: Record<string, string>) => void>();
  private split?: { main: Algo[]; worker: Algo[] };
  private failed = false;
  /** Streams in progress: the worker keeps the process alive only while there are some. */
  private active = 0;

  /** Keeps the process alive while a hasher waits on the worker (each hold is released once). */
  hold(): void {
    if (this.active++ === 0) this.worker?.ref();
  }
  release(): void {
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
        this.worker.on('message', (m: { op: string; id: number; buffer?: ArrayBuffer; digests?: Record<string, string> }) => {
          if (m.op === 'ack') this.freeSlot(m.buffer!);
          else if (m.op === 'done') {
            this.release();
            this.dones.get(m.id)?.(m.digests!);
            this.dones.delete(m.id);
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

  start(algorithms: Algo[]): number {
    const id = this.nextId++;
    this.live.add(id);
    this.worker!.postMessage({ op: 'start', id, algorithms });
    return id;
  }

  private readonly live = new Set<number>();

  /** A buffer to fill; waits while SLOTS buffers are with the worker (it hands them back). */
  acquire(): Promise<ArrayBuffer> | ArrayBuffer {
    const free = this.free.pop();
    if (free) return free;
    if (this.inFlight < SLOTS) return new ArrayBuffer(SLOT_BYTES);
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  /** A buffer back from the worker, or one a stream no longer needs. */
  giveBack(buffer: ArrayBuffer): void {
    const next = this.slotWaiters.shift();
    if (next) next(buffer);
    else if (this.free.length < SLOTS) this.free.push(buffer);
  }

  private freeSlot(buffer: ArrayBuffer): void {
    this.inFlight--;
    this.giveBack(buffer);
  }

  /** Hands a filled buffer to the worker (transferred: this side no longer holds it). */
  data(id: number, buffer: ArrayBuffer, length: number): void {
    this.inFlight++;
    this.worker!.postMessage({ op: 'data', id, buffer, length }, [buffer]);
  }

  end(id: number): Promise<Record<string, string>> {
    this.live.delete(id);
    return new Promise((resolve) => {
      this.dones.set(id, resolve);
      this.worker!.postMessage({ op: 'end', id });
    });
  }

  abort(id: number): void {
    this.live.delete(id);
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
 * sha256, sha1 and md5 of a sequence of byte chunks fed by `update`, large inputs sharing the
 * work with the hashing worker. Its state lives in this process: a chunked upload keeps one
 * across requests (`pause` between them lets the process exit while it waits).
 */
export class Hasher {
  private readonly mainHashes: Array<[Algo, Hash]>;
  private workerId = 0;
  private held = false;
  /** The buffer being filled for the worker, and how much of it is filled. */
  private cur?: Uint8Array;
  private fill = 0;
  private bytes = 0;

  /** `sizeHint`: the expected total, when known (below 1 MiB everything is hashed inline). */
  constructor(sizeHint?: number) {
    const plan = sizeHint === undefined || sizeHint >= OFFLOAD_MIN_BYTES ? pool.plan() : null;
    const main = plan ? plan.main : ALGOS;
    this.mainHashes = main.map((a) => [a, createHash(a)]);
    if (plan) this.workerId = pool.start(plan.worker);
  }

  get size(): number {
    return this.bytes;
  }

  /** Hashes `chunk` (copied for the worker: the caller may reuse it). A promise only when waiting for a worker buffer. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    this.bytes += chunk.length;
    for (const [, h] of this.mainHashes) h.update(chunk);
    if (!this.workerId) return undefined;
    if (!this.held) {
      pool.hold();
      this.held = true;
    }
    // Fast path: the chunk fits in the buffer being filled.
    if (this.cur && this.fill + chunk.length < SLOT_BYTES) {
      this.cur.set(chunk, this.fill);
      this.fill += chunk.length;
      return undefined;
    }
    return this.toWorker(chunk);
  }

  /** Copies the chunk into buffers for the worker (copied now, so the chunk is not kept alive), sending each one filled. */
  private async toWorker(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (!this.cur) {
        this.cur = new Uint8Array(await pool.acquire());
        this.fill = 0;
      }
      const n = Math.min(chunk.length - off, SLOT_BYTES - this.fill);
      this.cur.set(n === chunk.length ? chunk : chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SLOT_BYTES) this.send();
    }
  }

  private send(): void {
    if (!this.cur) return;
    pool.data(this.workerId, this.cur.buffer as ArrayBuffer, this.fill);
    this.cur = undefined;
    this.fill = 0;
  }

  /**
   * Between two bursts of input (chunks of an upload that arrive in separate requests): the
   * buffer being filled goes to the worker and the worker no longer keeps the process alive.
   */
  pause(): void {
    if (this.fill > 0) this.send();
    if (this.held) {
      this.held = false;
      pool.release();
    }
  }

  /** The digests; the hasher is finished. */
  async digest(): Promise<Digests> {
    const digests: Record<string, string> = {};
    for (const [a, h] of this.mainHashes) digests[a] = h.digest('hex');
    let more: Record<string, string> = {};
    if (this.workerId) {
      const id = this.workerId;
      if (this.fill > 0) this.send();
      else if (this.cur) pool.giveBack(this.cur.buffer as ArrayBuffer);
      this.cur = undefined;
      this.workerId = 0;
      if (!this.held) pool.hold();
      this.held = false;
      // `end` releases the hold when the worker answers.
      more = await pool.end(id);
    }
    const all = { ...digests, ...more };
    return { sha256: all.sha256, sha1: all.sha1, md5: all.md5, size: this.bytes };
  }

  /** Drops the state (an aborted stream or upload). */
  abort(): void {
    if (this.workerId) pool.abort(this.workerId);
    this.workerId = 0;
    if (this.cur) pool.giveBack(this.cur.buffer as ArrayBuffer);
    this.cur = undefined;
    if (this.held) pool.release();
    this.held = false;
  }
}

/**
 * Passes bytes through unchanged while computing sha256, sha1 and md5 and counting them, so
 * every byte is hashed exactly once on its way to the store. Large bodies share the hashing
 * with a worker thread. Fails the stream when the body is longer than allowed; a short body
 * fails at the end.
 */
export class DigestStream extends Transform {
  private readonly hasher: Hasher;
  private done = false;
  private result?: Digests;

  constructor(private readonly limits: DigestLimits = {}) {
    super({ highWaterMark: 256 * 1024 });
    this.hasher = new Hasher(limits.expectedSize);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const bytes = this.hasher.size + chunk.length;
    const { expectedSize, maxSize } = this.limits;
    if (expectedSize !== undefined && bytes > expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is longer than the declared ${expectedSize} bytes`));
      return;
    }
    if (maxSize !== undefined && bytes > maxSize) {
      cb(new AppError('PAYLOAD_TOO_LARGE', `Body exceeds the limit of ${maxSize} bytes`));
      return;
    }
    const wait = this.hasher.update(chunk);
    if (!wait) return cb(null, chunk);
    wait.then(() => cb(null, chunk), cb);
  }

  override _flush(cb: TransformCallback): void {
    const { expectedSize } = this.limits;
    if (expectedSize !== undefined && this.hasher.size !== expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is truncated: received ${this.hasher.size} of ${expectedSize} declared bytes`));
      return;
    }
    this.done = true;
    this.hasher.digest().then(
      (d) => {
        this.result = d;
        cb();
      },
      (e) => cb(e),
    );
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.done) this.hasher.abort();
    cb(err);
  }

  get size(): number {
    return this.hasher.size;
  }

  /** The digests; available once the stream has ended. */
  digests(): Digests {
    if (!this.result) throw new Error('DigestStream: digests() before the stream ended');
    return this.result;
  }
}
