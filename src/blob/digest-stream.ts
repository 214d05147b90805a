import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { AppError } from '../errors.js';
import { INGEST_BUFFER, giveIngestBuffer, takeIngestBuffer } from './ingest-buffers.js';
import { DIGEST_ALGORITHMS, blakeReady, digestSet, runningHash, type DigestAlgorithm, type RunningHash } from './digest-set.js';

/** The digests computed for some bytes: sha256 always, the others when the format asked for them. */
export interface Digests {
  sha256: string;
  sha1?: string;
  md5?: string;
  sha512?: string;
  blake2b256?: string;
  size: number;
}

export interface DigestLimits {
  /** Exact size the body must have (Content-Length, a manifest's size): fewer or more bytes is an error. */
  expectedSize?: number;
  /** Largest body accepted. */
  maxSize?: number;
  /** Which digests to compute (sha256 is always added); default: the request's repository format's (see digest-set.ts), else sha256, sha1 and md5. */
  digests?: readonly DigestAlgorithm[];
}

type Algo = DigestAlgorithm;
interface Split {
  main: Algo[];
  worker: Algo[];
}

/** Bodies below this are hashed inline: a worker round trip costs more than it saves. */
const OFFLOAD_MIN_BYTES = 1024 * 1024;
/**
 * The bytes for the worker go through 1 MiB slots of shared memory, each registered with the
 * worker once: one copy (a memcpy by Buffer#copy) and one small message per MiB, nothing
 * allocated per chunk. Transferring ArrayBuffers back and forth instead made a new JSArrayBuffer
 * per MiB on each side, each counted as 1 MiB of fresh external memory: on a busy machine the GC
 * then ran a full collection every few hundred milliseconds. At most SLOTS slots are with the
 * worker at once (the bytes in flight); slots being filled by streams are not counted.
 */
const SLOT_BYTES = 1024 * 1024;
const SLOTS = 16;
/** Free slots kept; beyond this a returned slot is dropped on both sides. */
const KEEP_SLOTS = 32;

interface Slot {
  index: number;
  view: Buffer;
}

/**
 * One shared hashing worker. Which digests of a set it computes is decided by timing each
 * algorithm here once (see `calibrate`, `splitFor`), so the two threads finish together: on this
 * CPU (SHA extensions: sha256 and sha1 ~1 GB/s, md5 ~0.45 GB/s) for sha256, sha1 and md5, sha256
 * stays on the main thread, which also moves the bytes, and sha1 and md5 go to the worker; sha256
 * alone stays on the main thread.
 */
class HashWorker {
  private worker?: Worker;
  private nextId = 1;
  private nextSlot = 0;
  private readonly slots = new Map<number, Slot>();
  private readonly free: Slot[] = [];
  /** Slots with the worker now; at most SLOTS. */
  private inFlight = 0;
  private readonly slotWaiters: Array<(slot: Slot) => void> = [];
  private readonly dones = new Map<number, (d: Record<string, string>) => void>();
  private costs?: Record<Algo, number>;
  private readonly splits = new Map<string, Split>();
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

  /** The split of `algorithms` between threads; null when everything stays on the main thread. */
  plan(algorithms: Algo[]): Split | null {
    if (this.failed) return null;
    const key = algorithms.join(',');
    let split = this.splits.get(key);
    if (!split) {
      this.costs ??= calibrate();
      split = splitFor(algorithms, this.costs);
      this.splits.set(key, split);
    }
    if (split.worker.length === 0) return null;
    if (!this.worker) {
      try {
        this.worker = new Worker(new URL('./hash-worker.js', import.meta.url));
        this.worker.on('message', (m: { op: string; id: number; slot?: number; digests?: Record<string, string> }) => {
          if (m.op === 'ack') this.freeSlot(m.slot!);
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
    return split;
  }

  start(algorithms: Algo[]): number {
    const id = this.nextId++;
    this.worker!.postMessage({ op: 'start', id, algorithms });
    return id;
  }

  /** A slot to fill; waits while SLOTS slots are with the worker (it hands them back). */
  acquire(): Promise<Slot> | Slot {
    const free = this.free.pop();
    if (free) return free;
    if (this.inFlight < SLOTS) {
      const shared = new SharedArrayBuffer(SLOT_BYTES);
      const slot = { index: this.nextSlot++, view: Buffer.from(shared) };
      this.slots.set(slot.index, slot);
      this.worker!.postMessage({ op: 'slot', slot: slot.index, shared });
      return slot;
    }
    return new Promise((resolve) => this.slotWaiters.push(resolve));
  }

  /** A slot back from the worker, or one a stream no longer needs. */
  giveBack(slot: Slot): void {
    const next = this.slotWaiters.shift();
    if (next) next(slot);
    else if (this.free.length < KEEP_SLOTS) this.free.push(slot);
    else {
      this.slots.delete(slot.index);
      this.worker?.postMessage({ op: 'drop', slot: slot.index });
    }
  }

  private freeSlot(index: number): void {
    const slot = this.slots.get(index);
    this.inFlight--;
    if (slot) this.giveBack(slot);
  }

  /** Hands a filled slot to the worker; the caller no longer uses it. */
  data(id: number, slot: Slot, length: number): void {
    this.inFlight++;
    this.worker!.postMessage({ op: 'data', id, slot: slot.index, length });
  }

  end(id: number): Promise<Record<string, string>> {
    return new Promise((resolve) => {
      this.dones.set(id, resolve);
      this.worker!.postMessage({ op: 'end', id });
    });
  }

  abort(id: number): void {
    this.worker?.postMessage({ op: 'abort', id });
  }
}

/** CPU-ns per MiB of each algorithm here: the fastest of three runs each (the first pays for warming up). */
export function calibrate(): Record<Algo, number> {
  const buf = Buffer.alloc(1024 * 1024, 0x5a);
  const cost = Object.fromEntries(DIGEST_ALGORITHMS.map((a) => [a, Infinity])) as Record<Algo, number>;
  const blake = blakeReady();
  for (let run = 0; run < 3; run++) {
    for (const a of DIGEST_ALGORITHMS) {
      if (a === 'blake2b256' && !blake) continue;
      const h = a === 'blake2b256' ? null : (runningHash(a) as RunningHash);
      const t = process.hrtime.bigint();
      if (h) h.update(buf);
      else blake!.update(buf);
      cost[a] = Math.min(cost[a], Number(process.hrtime.bigint() - t));
    }
  }
  blake?.init();
  // Not made yet (the first moments of the process): ~330 MB/s measured here, about 1.4× md5.
  if (!blake) cost.blake2b256 = 1.4 * cost.md5;
  return cost;
}

/**
 * Which of `algorithms` the worker computes, so that both threads finish together. The main
 * thread also receives the bytes, copies them for the worker and writes them: measured during
 * 1 GiB pushes, about twice the cost of the cheapest digest per byte (2.1 CPU-ns against 0.9–1.0
 * for sha1 and sha256 here); without a worker there is no copy and no message, about half that.
 * Charged so, sha256, sha1 and md5 keep only sha256 on the main thread on this CPU (sha1 and md5
 * to the worker), which pushed ~0.5 s per GiB faster than md5 alone on the worker. The worker
 * takes part only when that saves a tenth: sha256 alone stays on the main thread.
 */
export function splitFor(algorithms: readonly Algo[], cost: Record<Algo, number>): Split {
  const cheapest = Math.min(cost.sha256, cost.sha1, cost.md5);
  const sum = (as: Algo[]) => as.reduce((s, a) => s + cost[a], 0);
  let best = { main: [...algorithms], worker: [] as Algo[], t: Infinity };
  for (let mask = 1; mask < 1 << algorithms.length; mask++) {
    const worker = algorithms.filter((_, i) => mask & (1 << i));
    const main = algorithms.filter((_, i) => !(mask & (1 << i)));
    const t = Math.max(2 * cheapest + sum(main), sum(worker));
    if (t < best.t) best = { main, worker, t };
  }
  // The worker only when it saves a tenth: its round trips and the copy are not free on a busy machine.
  if (best.t > 0.9 * (cheapest + sum([...algorithms]))) return { main: [...algorithms], worker: [] };
  return { main: best.main, worker: best.worker };
}

const pool = new HashWorker();

/** memcpy into shared memory (TypedArray#set copies element by element with relaxed atomics there). */
function copyInto(chunk: Uint8Array, target: Buffer, at: number): void {
  (Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length)).copy(target, at);
}

/**
 * The digests of a sequence of byte chunks fed by `update`, large inputs sharing the work with the
 * hashing worker. Its state lives in this process: a chunked upload keeps one across requests
 * (`pause` between them lets the process exit while it waits).
 */
export class Hasher {
  readonly algorithms: Algo[];
  private mainHashes: Array<[Algo, RunningHash]> = [];
  /** Until every main-thread hash exists (a BLAKE2b instance being made). */
  private ready?: Promise<void>;
  private workerId = 0;
  private held = false;
  /** The slot being filled for the worker, and how much of it is filled. */
  private cur?: Slot;
  private fill = 0;
  private bytes = 0;

  /**
   * `sizeHint`: the expected total, when known (below 1 MiB everything is hashed inline).
   * `algorithms`: the repository format's declared set; default sha256, sha1, md5.
   */
  constructor(sizeHint?: number, algorithms?: readonly DigestAlgorithm[]) {
    this.algorithms = digestSet(algorithms);
    const plan = sizeHint === undefined || sizeHint >= OFFLOAD_MIN_BYTES ? pool.plan(this.algorithms) : null;
    const main = plan ? plan.main : this.algorithms;
    const made = main.map((a) => runningHash(a));
    if (made.some((h) => h instanceof Promise)) {
      this.ready = Promise.all(made).then((hs) => {
        this.mainHashes = hs.map((h, i) => [main[i], h]);
        this.ready = undefined;
      });
    } else this.mainHashes = made.map((h, i) => [main[i], h as RunningHash]);
    if (plan) this.workerId = pool.start(plan.worker);
  }

  get size(): number {
    return this.bytes;
  }

  /** Hashes `chunk` (copied for the worker: the caller may reuse it). A promise only when waiting for a worker buffer. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    if (this.ready) return this.ready.then(() => this.update(chunk));
    this.bytes += chunk.length;
    for (const [, h] of this.mainHashes) h.update(chunk);
    if (!this.workerId) return undefined;
    if (!this.held) {
      pool.hold();
      this.held = true;
    }
    // Fast path: the chunk fits in the buffer being filled.
    if (this.cur && this.fill + chunk.length < SLOT_BYTES) {
      copyInto(chunk, this.cur.view, this.fill);
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
        this.cur = await pool.acquire();
        this.fill = 0;
      }
      const n = Math.min(chunk.length - off, SLOT_BYTES - this.fill);
      copyInto(n === chunk.length ? chunk : chunk.subarray(off, off + n), this.cur.view, this.fill);
      this.fill += n;
      off += n;
      if (this.fill === SLOT_BYTES) this.send();
    }
  }

  private send(): void {
    if (!this.cur) return;
    pool.data(this.workerId, this.cur, this.fill);
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
    if (this.ready) await this.ready;
    const digests: Record<string, string> = {};
    for (const [a, h] of this.mainHashes) digests[a] = h.digest();
    let more: Record<string, string> = {};
    if (this.workerId) {
      const id = this.workerId;
      if (this.fill > 0) this.send();
      else if (this.cur) pool.giveBack(this.cur);
      this.cur = undefined;
      this.workerId = 0;
      if (!this.held) pool.hold();
      this.held = false;
      // `end` releases the hold when the worker answers.
      more = await pool.end(id);
    }
    const all: Record<string, string> = { ...digests, ...more };
    const out: Digests = { sha256: all.sha256, size: this.bytes };
    for (const a of this.algorithms) out[a] = all[a];
    return out;
  }

  /** Drops the state (an aborted stream or upload). */
  abort(): void {
    if (this.workerId) pool.abort(this.workerId);
    this.workerId = 0;
    if (this.cur) pool.giveBack(this.cur);
    this.cur = undefined;
    if (this.held) pool.release();
    this.held = false;
  }
}

/**
 * Passes bytes through while `hasher` hashes them, re-cut into the reused 1 MiB buffers of
 * ingest-buffers.ts (a FileSink hands them back once written): each incoming chunk is copied once
 * and released at once. A socket hands over a fresh 64 KiB buffer per read; passed on as they
 * were, the ones still queued for the disk at a scavenge were promoted, and their backing stores
 * count towards the old generation's limit: on a busy machine, a full GC every 100–150 ms
 * (1.5–2 CPU-s per GiB on the GC threads). Only for a consumer that hands the buffers back
 * (`recut`); for any other the chunks pass on as they came (a fresh 1 MiB buffer per MiB is
 * worse still). `check(total)` may refuse the bytes so far (a size limit); it runs before
 * anything of the chunk is used.
 */
export class HashingStream extends Transform {
  private out?: Buffer;
  private fill = 0;

  constructor(
    protected readonly hasher: Hasher,
    private readonly check?: (total: number) => AppError | null,
    private readonly recut = false,
  ) {
    super({ readableHighWaterMark: recut ? 2 * INGEST_BUFFER : 256 * 1024, writableHighWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const refused = this.check?.(this.hasher.size + chunk.length);
    if (refused) {
      cb(refused);
      return;
    }
    let off = this.recut ? 0 : chunk.length;
    while (off < chunk.length) {
      if (!this.out) {
        this.out = takeIngestBuffer();
        this.fill = 0;
      }
      const n = chunk.copy(this.out, this.fill, off);
      this.fill += n;
      off += n;
      if (this.fill === INGEST_BUFFER) {
        this.push(this.out);
        this.out = undefined;
      }
    }
    const pass = this.recut ? undefined : chunk;
    const wait = this.hasher.update(chunk);
    if (!wait) return cb(null, pass);
    wait.then(() => cb(null, pass), cb);
  }

  override _flush(cb: TransformCallback): void {
    if (this.out && this.fill > 0) this.push(this.out.subarray(0, this.fill));
    else if (this.out) giveIngestBuffer(this.out);
    this.out = undefined;
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (this.out) giveIngestBuffer(this.out);
    this.out = undefined;
    cb(err);
  }
}

/**
 * Passes bytes through (as they came, or re-cut: see HashingStream) while computing the digests
 * asked for (`limits.digests`, see Hasher) and counting them, so every byte is hashed exactly once on its way to the store. Large bodies share the hashing
 * with a worker thread. Fails the stream when the body is longer than allowed; a short body
 * fails at the end.
 */
export class DigestStream extends HashingStream {
  private done = false;
  private result?: Digests;

  /** `recut`: the consumer hands buffers back to the ingest pool (see HashingStream). */
  constructor(
    private readonly limits: DigestLimits = {},
    recut = false,
  ) {
    super(
      new Hasher(limits.expectedSize, limits.digests),
      (bytes) => {
        const { expectedSize, maxSize } = limits;
        if (expectedSize !== undefined && bytes > expectedSize) return new AppError('SIZE_INVALID', `Body is longer than the declared ${expectedSize} bytes`);
        if (maxSize !== undefined && bytes > maxSize) return new AppError('PAYLOAD_TOO_LARGE', `Body exceeds the limit of ${maxSize} bytes`);
        return null;
      },
      recut,
    );
  }

  override _flush(cb: TransformCallback): void {
    const { expectedSize } = this.limits;
    if (expectedSize !== undefined && this.hasher.size !== expectedSize) {
      cb(new AppError('SIZE_INVALID', `Body is truncated: received ${this.hasher.size} of ${expectedSize} declared bytes`));
      return;
    }
    this.done = true;
    super._flush((err) => {
      if (err) return cb(err);
      this.hasher.digest().then(
        (d) => {
          this.result = d;
          cb();
        },
        (e) => cb(e),
      );
    });
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    if (!this.done) this.hasher.abort();
    super._destroy(err, cb);
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
