import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable, finished } from 'node:stream';
import { IncomingMessage } from 'node:http';
import type { Db, Tx } from '../db/db.js';
import { now, num, readCommittedRow } from '../db/db.js';
import { AppError, isAppError } from '../errors.js';
import type { BlobStores } from './blob-stores.js';
import { DigestStream, Hasher, type DigestLimits, type Digests } from './digest-stream.js';
import { DIGEST_ALGORITHMS, digestSet, type DigestAlgorithm } from './digest-set.js';
import { ChunkedBlobs, type ChunkedBlob } from './chunked-blob.js';
import { bufferedBodyBudget } from '../http/request-limits.js';
import type { ByteRange } from './driver.js';
import { FileBody } from './file-body.js';
import { IngestOwner } from './ingest-owner.js';
import { SpaceReserve } from './space-reserve.js';

export interface BlobRow {
  id: number;
  store_id: number;
  sha256: string;
  /** Digests besides sha256 are null until a format that needs them stored these bytes, or `ensureDigests` computed them. */
  sha1: string | null;
  md5: string | null;
  sha512: string | null;
  blake2b256: string | null;
  size: number;
  storage_key: string;
  created_at: number;
  touched_at: number;
}

/** Digests a client declared for its upload: a mismatch refuses it (400 naming the algorithm). */
export type ExpectedDigests = Partial<Record<DigestAlgorithm, string>>;

/**
 * Bytes written to a store under a fresh key, digests known, not yet referenced by any row.
 * `attach` (inside the caller's transaction) makes it a blob row or folds it into an existing
 * row of the same digest; after the commit `settle` drops duplicate bytes; on failure
 * `discard` removes what was written. Nothing is visible before the commit.
 */
export interface StagedBlob extends Digests {
  storeId: number;
  storageKey: string;
  /** Set by attach: the row the content ended up in, and whether it was already there. */
  blobId?: number;
  duplicate?: boolean;
}

/** A fresh storage key; it ends with the tag of its writer, so GC can tell an ingest in flight (IngestOwner). */
function newKey(owner: IngestOwner): string {
  const id = randomBytes(16).toString('hex');
  return `content/${id.slice(0, 2)}/${id.slice(2, 4)}/${id}-${owner.tag}`;
}

export function normaliseRow(r: BlobRow): BlobRow {
  return {
    ...r,
    sha1: r.sha1 ?? null,
    md5: r.md5 ?? null,
    sha512: r.sha512 ?? null,
    blake2b256: r.blake2b256 ?? null,
    size: num(r.size),
    created_at: num(r.created_at),
    touched_at: num(r.touched_at),
    id: num(r.id),
  };
}

/** The algorithms a client declared a value for (each must be computed to check it). */
export function expectedAlgorithms(expected: ExpectedDigests | undefined): DigestAlgorithm[] {
  return DIGEST_ALGORITHMS.filter((a) => !!expected?.[a]);
}

/** The refusal when `digests` do not match what the client declared (`expected`), else null. */
export function digestMismatch(digests: Digests, expected: ExpectedDigests | undefined): AppError | null {
  const which = expectedAlgorithms(expected).find((a) => expected![a]!.toLowerCase() !== digests[a]);
  return which ? new AppError('DIGEST_INVALID', `Content ${which} does not match: expected ${expected![which]}, got ${digests[which] ?? '(not computed)'}`) : null;
}

/** The digests ingest computes when not told (callers pass their repository format's `digests`): sha256, sha1, md5. */
function defaultDigests(): DigestAlgorithm[] {
  return digestSet(undefined);
}

/** The digest columns of a blob row for `digests` (only those computed). */
function digestColumns(digests: Digests): Partial<Record<DigestAlgorithm, string>> {
  const cols: Partial<Record<DigestAlgorithm, string>> = {};
  for (const a of DIGEST_ALGORITHMS) if (digests[a]) cols[a] = digests[a];
  return cols;
}

/**
 * Where new bytes land besides the blob store: the data directory holds the SQLite database, its
 * WAL, upload sessions and proxy spools.
 */
export interface SpaceLimits {
  dataDir?: string;
  /** Free bytes below which new content is refused (0: never). */
  minFreeBytes: number;
  /** Size of the reserve file kept in the data directory for deletes on a full disk (0: none). */
  reserveBytes?: number;
}

export class BlobService {
  /**
   * Blobs received in pieces (chunked uploads) whose hash state this process holds: append each
   * piece as it arrives (`chunkedBlob`), then `finish` and `stageAppended`, so every byte is hashed
   * and written once. The bytes live in the blob store; the caller owns the upload id. Each piece
   * needs the store's space (`ensureSpace`).
   */
  readonly chunked = new ChunkedBlobs();
  /** Keys staged and not yet settled or discarded: GC keeps their bytes whatever its grace. */
  private readonly staging = new IngestOwner();

  constructor(
    private readonly db: Db,
    readonly stores: BlobStores,
    private readonly space: SpaceLimits = { minFreeBytes: 0 },
  ) {
    if (space.dataDir && space.reserveBytes) this.reserve = new SpaceReserve(space.dataDir, space.reserveBytes, space.minFreeBytes);
  }

  private readonly reserve?: SpaceReserve;

  /** Starts keeping the space reserve (see SpaceReserve). */
  start(): void {
    this.reserve?.start();
  }

  close(): void {
    this.reserve?.stop();
  }

  /**
   * Why new content cannot be written now (the data directory or the file blob store `storeId`
   * has less than `minFreeBytes` free), or null. Writes stop at a threshold rather than at a full
   * disk so the database always has room to commit the deletes that free space: SQLite needs free
   * pages for its WAL even to delete. The threshold is the first line (it holds for every node,
   * and `incoming` refuses a declared size before a byte is read); the space reserve covers what
   * it cannot: concurrent uploads overshooting it and other programs filling the disk.
   */
  async lowSpace(storeId?: number, incoming = 0): Promise<string | null> {
    const min = this.space.minFreeBytes;
    if (min <= 0 && !this.reserve) return null;
    const why = (where: string, free: number, adding: number) =>
      adding > 0 && free >= min
        ? `${where} has ${free} bytes free; storing ${adding} more would leave less than the minimum of ${min} (STOWAGE_BLOB_MIN_FREE)`
        : `${where} has ${free} bytes free, below the minimum of ${min} (STOWAGE_BLOB_MIN_FREE)`;
    if (this.space.dataDir) {
      const s = await fs.statfs(this.space.dataDir).catch(() => null);
      const free = s ? s.bavail * s.bsize : null;
      if (free !== null) void this.reserve?.check(free);
      if (free !== null && free < min) return why('The data directory', free, 0);
    }
    if (min <= 0) return null;
    if (storeId !== undefined) {
      // A declared size counts against the store it goes to: refused before a byte is read.
      const free = (await (await this.stores.driver(storeId)).available?.()) ?? null;
      if (free !== null && free - incoming < min) return why('The blob store', free, incoming);
    }
    return null;
  }

  /** Refuses new content (507) while space is below the threshold, or would be after `incoming` bytes; see `lowSpace`. */
  async ensureSpace(storeId?: number, incoming = 0): Promise<void> {
    const why = await this.lowSpace(storeId, incoming);
    if (why) throw new AppError('INSUFFICIENT_STORAGE', `Not enough storage space: ${why}. Delete content (and run the blob GC task) to free space`);
  }

  /**
   * Streams `body` into the store while hashing it once; verifies sizes and expected digests.
   * Computes `opts.digests` (default: see DigestLimits) and every algorithm `expected` names.
   */
  async stage(storeId: number, body: Readable, opts: DigestLimits & { expected?: ExpectedDigests } = {}): Promise<StagedBlob> {
    const driver = await this.stores.driver(storeId);
    const extra = expectedAlgorithms(opts.expected);
    const limits = extra.length > 0 ? { ...opts, digests: [...(opts.digests ?? defaultDigests()), ...extra] } : opts;
    const digest = new DigestStream(limits, driver.returnsIngestBuffers === true);
    // Any end of the body short of a complete one fails the write, and the driver drops the temp
    // bytes: an error, a client that disconnects mid-body, and also a request stream destroyed
    // before we began reading it (its socket closed while the handler awaited the database),
    // which `pipe` alone never reports: the write would wait forever with its temp file open.
    finished(body, (err) => {
      if (err) digest.destroy(isAppError(err) ? err : new AppError('BAD_REQUEST', 'Upload aborted by the client before the body was complete', { cause: err }));
    });
    // The driver's pipeline reports the error; until it attaches (it may await a mkdir first) this
    // keeps an early abort from being an unhandled 'error' event, which would end the process.
    digest.on('error', () => undefined);
    // After the listeners above: a caller that destroys the body on this refusal must not leave an unhandled 'error'.
    await this.ensureSpace(storeId, opts.expectedSize ?? 0);
    const key = newKey(this.staging);
    this.staging.add(key);
    const hashed = body.pipe(digest);
    try {
      await driver.write(key, hashed, opts.expectedSize);
    } catch (e) {
      this.staging.delete(key);
      throw e;
    }
    const d = digest.digests();
    const staged: StagedBlob = { ...d, storeId, storageKey: key };
    const mismatch = digestMismatch(d, opts.expected);
    if (mismatch) {
      await this.discard(staged);
      throw mismatch;
    }
    return staged;
  }

  /** Stages a complete local file whose digests are already known (a proxy spool): no second hash. */
  async stageFile(storeId: number, file: string, digests: Digests): Promise<StagedBlob> {
    const driver = await this.stores.driver(storeId);
    const key = newKey(this.staging);
    this.staging.add(key);
    try {
      await driver.writeFile(key, file);
    } catch (e) {
      this.staging.delete(key);
      throw e;
    }
    return { ...digests, storeId, storageKey: key };
  }

  /** The upload `id` received in pieces into store `storeId`, with this process's hash state for it (computing `digests`). */
  async chunkedBlob(storeId: number, id: string, digests?: readonly DigestAlgorithm[]): Promise<ChunkedBlob> {
    return this.chunked.get(id, await this.stores.driver(storeId), () => this.ensureSpace(storeId), digests);
  }

  /** Stages a finished upload in pieces whose digests are known (`ChunkedBlob.finish`): no second hash. */
  async stageAppended(storeId: number, id: string, digests: Digests): Promise<StagedBlob> {
    const driver = await this.stores.driver(storeId);
    const key = newKey(this.staging);
    this.staging.add(key);
    try {
      await driver.publishAppended(id, key);
    } catch (e) {
      this.staging.delete(key);
      throw e;
    }
    this.chunked.remove(id);
    return { ...digests, storeId, storageKey: key };
  }

  /** Removes an upload in pieces and its hash state (cancelled, refused or abandoned). */
  async deleteAppended(storeId: number, id: string): Promise<void> {
    this.chunked.remove(id);
    await (await this.stores.driver(storeId)).deleteAppended(id);
  }

  /** Inside the caller's transaction: the blob row for the staged bytes (existing content is reused). */
  async attach(tx: Tx, staged: StagedBlob): Promise<BlobRow> {
    const reuse = async (): Promise<BlobRow | undefined> => {
      const existing = await tx<BlobRow>('blobs').where({ store_id: staged.storeId, sha256: staged.sha256 }).first();
      if (!existing) return undefined;
      // Touch first: GC deletes only rows untouched for its grace period, so a row being reused is safe.
      // Digests the row lacks and this ingest computed (the bytes streamed through anyway) are filled in.
      const t = now();
      const fill = Object.fromEntries(Object.entries(digestColumns(staged)).filter(([a]) => existing[a as DigestAlgorithm] == null));
      if (
        (await tx('blobs')
          .where({ id: existing.id })
          .update({ touched_at: t, ...fill })) !== 1
      )
        return undefined;
      staged.blobId = num(existing.id);
      staged.duplicate = true;
      return normaliseRow({ ...existing, ...fill, touched_at: t });
    };
    const found = await reuse();
    if (found) return found;
    const t = now();
    // Two uploads of the same new content may race (two nodes, or two clients): the loser's insert
    // does nothing (on PostgreSQL it waits for the winner's commit) and it reuses the winner's row.
    const rows = await tx('blobs')
      .insert({
        store_id: staged.storeId,
        ...digestColumns(staged),
        size: staged.size,
        storage_key: staged.storageKey,
        created_at: t,
        touched_at: t,
      })
      .onConflict(['store_id', 'sha256'])
      .ignore()
      .returning('*');
    if (rows.length === 0) {
      const winner = await reuse();
      if (!winner) throw new AppError('CONFLICT', 'Concurrent upload of the same content; please retry');
      return winner;
    }
    staged.blobId = num(rows[0].id);
    staged.duplicate = false;
    return normaliseRow(rows[0] as BlobRow);
  }

  /** After a successful commit: bytes that duplicated an existing blob are removed. */
  async settle(staged: StagedBlob): Promise<void> {
    // Committed: the row protects the bytes from now on (dropped only after the commit, see gc).
    this.staging.delete(staged.storageKey);
    if (staged.duplicate) await this.deleteKey(staged.storeId, staged.storageKey);
  }

  /** After a failed transaction (or a rejected upload): the staged bytes are removed. */
  async discard(staged: StagedBlob): Promise<void> {
    await this.deleteKey(staged.storeId, staged.storageKey);
    this.staging.delete(staged.storageKey);
  }

  /**
   * Stage → one transaction (`write` receives the blob row) → settle, or discard on failure.
   * The common shape of every content write.
   */
  async ingest<T>(staged: StagedBlob, write: (tx: Tx, blob: BlobRow) => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await this.db.transaction(async (tx) => write(tx, await this.attach(tx, staged)));
    } catch (e) {
      await this.discard(staged);
      throw e;
    }
    await this.settle(staged);
    return result;
  }

  private async deleteKey(storeId: number, key: string): Promise<void> {
    try {
      await (await this.stores.driver(storeId)).delete(key);
    } catch {
      // Left for GC's orphan sweep.
    }
  }

  /** Computations of missing digests in progress, by blob id: one read per blob at a time. */
  private readonly computing = new Map<number, Promise<BlobRow>>();

  /**
   * `blob` with `algorithms` all known: the ones never computed (the blob was stored for a format
   * that did not need them) are computed now from one read of the bytes and stored on the row.
   * Concurrent calls for one blob share that read (a later one for more algorithms reads again
   * after it). Not for the upload path: search, checksum requests and the backfill task use it.
   */
  async ensureDigests(blob: BlobRow, algorithms: readonly DigestAlgorithm[]): Promise<BlobRow> {
    const lacking = (b: BlobRow) => algorithms.filter((a) => b[a] == null);
    if (lacking(blob).length === 0) return blob;
    const running = this.computing.get(blob.id);
    if (running) {
      const after = await running.catch(() => blob);
      return lacking(after).length === 0 ? after : this.ensureDigests(after, algorithms);
    }
    const work = (async () => {
      // Another node (or an upload of the same bytes) may have filled them meanwhile.
      const current = (await this.get(blob.id)) ?? blob;
      const missing = lacking(current);
      if (missing.length === 0) return current;
      const hasher = new Hasher(current.size, missing);
      try {
        for await (const c of await this.open(current)) await hasher.update(c as Buffer);
      } catch (e) {
        hasher.abort();
        throw e;
      }
      const d = await hasher.digest();
      // sha256 comes along (ingest always computes it): bytes that no longer match are not described by new digests.
      if (d.size !== current.size || d.sha256 !== current.sha256)
        throw new AppError('INTERNAL', `Blob ${current.id} (${current.storage_key}) does not match its recorded size and sha256`);
      const fill = Object.fromEntries(missing.map((a) => [a, d[a]!]));
      for (const [a, v] of Object.entries(fill))
        await this.db('blobs')
          .where({ id: current.id })
          .whereNull(a)
          .update({ [a]: v });
      this.digestsComputed++;
      return { ...current, ...fill };
    })();
    this.computing.set(blob.id, work);
    try {
      return await work;
    } finally {
      this.computing.delete(blob.id);
    }
  }

  /** How many times `ensureDigests` read a blob to compute digests (tests, metrics). */
  digestsComputed = 0;

  /**
   * Blobs of `storeId` lacking one of `algorithms`, in id order after `afterId` (the backfill task's
   * batches).
   */
  async lackingDigests(storeId: number, algorithms: readonly DigestAlgorithm[], afterId: number, limit: number): Promise<BlobRow[]> {
    const rows = await this.db<BlobRow>('blobs')
      .where({ store_id: storeId })
      .andWhere('id', '>', afterId)
      .andWhere((q) => {
        for (const a of algorithms) q.orWhereNull(a);
      })
      .orderBy('id')
      .limit(limit);
    return rows.map(normaliseRow);
  }

  async get(id: number): Promise<BlobRow | undefined> {
    // Read with every content GET: on SQLite through the read-only connection (committed state).
    const fast = readCommittedRow(this.db, 'select * from blobs where id = ? limit 1', [id]) as BlobRow | undefined | null;
    const r = fast !== null ? fast : await this.db<BlobRow>('blobs').where({ id }).first();
    return r && normaliseRow(r);
  }

  async open(blob: BlobRow, range?: ByteRange): Promise<Readable> {
    return (await this.stores.driver(blob.store_id)).read(blob.storage_key, range);
  }

  async usage(storeId: number): Promise<{ blobCount: number; totalSize: number }> {
    const r = (await this.db('blobs').where({ store_id: storeId }).count({ n: '*' }).sum({ s: 'size' }).first()) as {
      n: unknown;
      s: unknown;
    };
    return { blobCount: num(r?.n ?? 0), totalSize: num(r?.s ?? 0) || 0 };
  }

  /**
   * Removes those of `ids` that no asset references any more and nobody touched since `cutoff`
   * (a cleanup's own deletes, reclaimed in the same run): the row first, in its own commit, with
   * the check in the delete itself (an upload reusing the blob touches it first), then its bytes.
   */
  async collect(ids: Iterable<number>, cutoff: number, signal?: AbortSignal): Promise<{ blobsDeleted: number; bytesReclaimed: number }> {
    let blobsDeleted = 0;
    let bytesReclaimed = 0;
    const all = [...new Set(ids)];
    for (let i = 0; i < all.length; i += 500) {
      signal?.throwIfAborted();
      const unused = (q: import('knex').Knex.QueryBuilder, ids: number[]) =>
        q
          .whereIn('id', ids)
          .where('touched_at', '<', cutoff)
          .whereNotExists(this.db('assets').whereRaw('assets.blob_id = blobs.id').select(this.db.raw('1')));
      const rows: BlobRow[] = ((await unused(this.db('blobs'), all.slice(i, i + 500)).select('*')) as BlobRow[]).map(normaliseRow);
      if (rows.length === 0) continue;
      // Checked again in the delete itself: an upload may have touched or referenced one meanwhile.
      let gone = rows;
      try {
        const n = await unused(
          this.db('blobs'),
          rows.map((b) => b.id),
        ).delete();
        if (n !== rows.length) {
          const left = new Set(
            (
              await this.db('blobs')
                .whereIn(
                  'id',
                  rows.map((b) => b.id),
                )
                .select('id')
            ).map((r: { id: unknown }) => num(r.id)),
          );
          gone = rows.filter((b) => !left.has(b.id));
        }
      } catch {
        // A reference appeared (FK restrict) and the statement kept them all: one at a time then.
        gone = [];
        for (const b of rows) {
          const n = await unused(this.db('blobs'), [b.id])
            .delete()
            .catch(() => 0);
          if (n === 1) gone.push(b);
        }
      }
      // The rows are gone: their bytes go a few at a time (a cleanup frees thousands).
      for (let j = 0; j < gone.length; j += 16) await Promise.all(gone.slice(j, j + 16).map((b) => this.deleteKey(b.store_id, b.storage_key)));
      blobsDeleted += gone.length;
      bytesReclaimed += gone.reduce((n, b) => n + b.size, 0);
    }
    return { blobsDeleted, bytesReclaimed };
  }

  /**
   * Removes blobs no asset references and nobody touched within `graceMs`, then bytes in the
   * store that no row names (left by a crash between publish and commit) and are older than the
   * grace. Rows go first, in their own commit; bytes only after it. Bytes of an ingest still in
   * flight (temp files, staged keys not yet committed) are never removed, whatever the grace.
   */
  async gc(graceMs: number, storeId?: number, signal?: AbortSignal): Promise<{ blobsDeleted: number; bytesReclaimed: number; orphansDeleted: number }> {
    const cutoff = now() - graceMs;
    let blobsDeleted = 0;
    let bytesReclaimed = 0;
    let orphansDeleted = 0;
    for (;;) {
      // A stopped task ends between batches; what was deleted so far stays deleted.
      signal?.throwIfAborted();
      const q = this.db<BlobRow>('blobs')
        .where('touched_at', '<', cutoff)
        .whereNotExists(this.db('assets').whereRaw('assets.blob_id = blobs.id').select(this.db.raw('1')))
        .orderBy('id')
        .limit(500);
      if (storeId !== undefined) q.where({ store_id: storeId });
      const candidates = (await q).map(normaliseRow);
      if (candidates.length === 0) break;
      const gone: BlobRow[] = [];
      for (const b of candidates) {
        // Re-check in the delete itself: an upload may have touched or referenced it meanwhile.
        try {
          const n = await this.db('blobs')
            .where({ id: b.id })
            .where('touched_at', '<', cutoff)
            .whereNotExists(this.db('assets').whereRaw('assets.blob_id = blobs.id').select(this.db.raw('1')))
            .delete();
          if (n === 1) gone.push(b);
        } catch {
          // A reference appeared (FK restrict): keep it.
        }
      }
      for (const b of gone) {
        await this.deleteKey(b.store_id, b.storage_key);
        blobsDeleted++;
        bytesReclaimed += b.size;
      }
      if (candidates.length < 500) break;
    }
    const storeIds = storeId !== undefined ? [storeId] : (await this.db('blob_stores').select('id')).map((r) => num(r.id));
    for (const sid of storeIds) {
      signal?.throwIfAborted();
      const driver = await this.stores.driver(sid);
      // Partial uploads a crash (kill -9, power loss) left in the driver's temp area.
      orphansDeleted += (await driver.sweepTemp?.(graceMs)) ?? 0;
      let batch: { key: string; size: number; modified: number }[] = [];
      const flush = async () => {
        // Ingests in flight are judged before the database is asked: a staged key leaves `staging`
        // only after its commit, so one that is not open here and has no row is garbage.
        batch = batch.filter((b) => this.staging.collectable(b.key, b.modified, graceMs));
        if (batch.length === 0) return;
        const known = new Set(
          (
            await this.db('blobs')
              .where({ store_id: sid })
              .whereIn(
                'storage_key',
                batch.map((b) => b.key),
              )
              .select('storage_key')
          ).map((r) => r.storage_key as string),
        );
        for (const b of batch) {
          if (!known.has(b.key)) {
            await this.deleteKey(sid, b.key);
            orphansDeleted++;
            bytesReclaimed += b.size;
          }
        }
        batch = [];
      };
      for await (const e of driver.list('content/')) {
        if (e.modified.getTime() >= cutoff) continue;
        batch.push({ key: e.key, size: e.size, modified: e.modified.getTime() });
        if (batch.length >= 500) await flush();
      }
      await flush();
    }
    return { blobsDeleted, bytesReclaimed, orphansDeleted };
  }
}

/**
 * Reads a whole small stream (manifests, metadata documents) with a hard cap. A file of the file
 * store is read in one synchronous read (FileBody.readWhole: no thread hand-offs).
 */
export async function readSmall(stream: Readable, maxBytes: number): Promise<Buffer> {
  if (stream instanceof FileBody) {
    const whole = stream.readWhole(maxBytes);
    if (whole) return whole;
  }
  const chunks: Buffer[] = [];
  let n = 0;
  // A request body is never destroyed here: that resets the connection before the 413 is
  // written. The listener closes it after the answer (request-limits.ts).
  const request = stream instanceof IncomingMessage;
  const budget = bufferedBodyBudget(stream);
  try {
    for await (const c of request ? stream.iterator({ destroyOnReturn: false }) : stream) {
      n += (c as Buffer).length;
      if (n > maxBytes) {
        if (!request) stream.destroy();
        throw new AppError('PAYLOAD_TOO_LARGE', `Body exceeds the limit of ${maxBytes} bytes`);
      }
      budget?.take((c as Buffer).length);
      chunks.push(c as Buffer);
    }
  } finally {
    budget?.release(chunks.reduce((sum, c) => sum + c.length, 0));
  }
  return Buffer.concat(chunks);
}

export { pipeline };
