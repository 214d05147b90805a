import { pipeline, Readable } from 'node:stream';
import { LRUCache } from 'lru-cache';
import { contentTypeGuard, type GuardOptions } from './content-type-guard.js';
import { AppError } from '../errors.js';
import { digestMismatch, readSmall, type BlobRow, type StagedBlob } from '../blob/blob-service.js';
import type { Digests } from '../blob/digest-stream.js';
import type { AssetRow, DirEntry } from '../content/types.js';
import type { Stowage } from '../stowage.js';
import type { FormatPlugin, MergeInput } from './format.js';
import type { AccessCheck, Content, GetOptions, PutOptions, PutResult, RepositoryConfig, RepositoryType } from './types.js';
import type { AuditEvent, AuditOrigin } from '../security/audit.js';
import { checkWritePolicy, putResult, runChange, type ChangeOptions, type ChangeOutcome, type ChangeSource } from './unit-of-work.js';
import type { ContentChange } from '../content/content-change.js';

/**
 * A repository as the core sees it. Hosted, proxy and group behaviour is written once here and
 * in proxy-repository.ts; formats call these methods and supply hooks (FormatPlugin).
 */
export abstract class Repository {
  constructor(
    readonly id: number,
    readonly config: RepositoryConfig,
    readonly blobStoreId: number,
    readonly format: FormatPlugin,
    protected readonly app: Stowage,
  ) {}

  get name(): string {
    return this.config.name;
  }
  get type(): RepositoryType {
    return this.config.type;
  }
  get online(): boolean {
    return this.config.online;
  }
  /** The format's own config section (e.g. `raw`). */
  section<T = Record<string, unknown>>(key: string): T | undefined {
    return this.config[key] as T | undefined;
  }

  /** The content at `path`, or null. */
  abstract get(path: string, opts?: GetOptions): Promise<Content | null>;

  /**
   * Runs one change of this repository's content through the unit of work (write policy, one
   * transaction, retry on conflict, audit, maintenance hook): the only way content changes.
   */
  change<T>(opts: ChangeOptions, compute: (change: ContentChange) => T | Promise<T>): Promise<ChangeOutcome<T>> {
    return runChange(this.app, this, opts, compute);
  }

  /** Stores a body at `path` (hosted; a group forwards to its writable member). */
  async put(_path: string, _body: Readable, _opts: PutOptions, _access?: AccessCheck): Promise<PutResult> {
    throw new AppError('METHOD_NOT_ALLOWED', `Repository '${this.name}' (${this.type}) does not allow uploads`);
  }

  /**
   * Stores at `path` bytes that are already complete and whose digests are known (a chunked upload
   * hashed as it arrived): `stage` publishes them as a staged blob (a rename or an in-store copy),
   * called only once the write is allowed; they are not hashed again.
   */
  async putStaged(_path: string, _stage: () => Promise<StagedBlob>, _digests: Digests, _opts: PutOptions, _access?: AccessCheck): Promise<PutResult> {
    throw new AppError('METHOD_NOT_ALLOWED', `Repository '${this.name}' (${this.type}) does not allow uploads`);
  }

  /** Removes the asset at `path`; false when there was none. */
  async delete(path: string, opts: DeleteOptions = {}): Promise<boolean> {
    const { committed } = await this.change({ source: opts.source ?? 'client', access: opts.access, origin: opts.origin }, (c) => {
      c.deleteAsset(path);
      if (opts.audit) c.audit(opts.audit);
    });
    return committed.assetsDeleted.length > 0;
  }

  /** Immediate children of a folder, for browsing. */
  async list(dir: string): Promise<DirEntry[]> {
    return this.app.content.listChildren(this.id, dir);
  }

  /** The repository's own stored asset at `path`, wrapped as Content. */
  async local(path: string): Promise<Content | null> {
    const fast = this.app.content.findAssetWithBlob(this.id, path);
    if (fast !== null) return fast ? this.wrap(fast.asset, fast.blob) : null;
    const found = await this.app.content.queryAssetWithBlob(this.id, path);
    return found ? this.wrap(found.asset, found.blob) : null;
  }

  /**
   * Records that content was served (Nexus's last downloaded; throttled, batched, never fails the
   * read). A proxy's first fetch counts once what it stored is committed.
   */
  downloaded(content: Content): void {
    if (content.pending) {
      void content.pending.stored.then((c) => this.app.content.markDownloaded(c.asset)).catch(() => undefined);
      return;
    }
    void this.app.content.markDownloaded(content.asset).catch(() => undefined);
  }

  /** Stages `body` for `change` as an upload to `path` (the strict content type check applies). */
  async stageFor(change: ContentChange, path: string, body: Readable, opts: PutOptions): Promise<StagedBlob> {
    const guard = this.strictContentType(path, opts.kind, { drain: true });
    return change.stage(guard ? pipeline(body, guard, () => undefined) : body, opts);
  }

  wrap(asset: AssetRow, blob: BlobRow): Content {
    return { asset, blob, repositoryName: this.name, open: (range) => this.app.blobs.open(blob, range) };
  }

  /** Stream → blob store (hashed once) → the unit of work; on any failure nothing is visible. */
  protected async store(path: string, body: Readable, opts: StoreOptions, access?: AccessCheck): Promise<PutResult> {
    const guard = this.strictContentType(path, opts.kind, { drain: true });
    const source = guard ? pipeline(body, guard, () => undefined) : body;
    const staged = await this.app.blobs.stage(this.blobStoreId, source, { digests: this.format.digests, ...opts });
    return this.commitStaged(path, staged, opts, access);
  }

  /** With `strictContentTypeValidation`, a check that the bytes fit the file name's type (not for generated metadata). */
  protected strictContentType(path: string, kind: string | undefined, opts: GuardOptions) {
    if (!this.config.storage.strictContentTypeValidation || kind === 'metadata') return null;
    return contentTypeGuard(path, opts);
  }

  /** Puts staged bytes at `path` as one change (the staged blob is the change's: discarded on failure). */
  protected async commitStaged(path: string, staged: StagedBlob, opts: StoreOptions, access?: AccessCheck): Promise<PutResult> {
    const { committed } = await this.change({ source: opts.source ?? 'client', access, adopt: [staged] }, (c) => {
      c.put(path, staged, {
        contentType: opts.contentType,
        kind: opts.kind,
        component: opts.component,
        attributes: opts.attributes,
        lastVerified: opts.lastVerified,
        uploader: opts.uploader,
        mutable: opts.mutable,
      });
    });
    return (await putResult(this.app, committed, path))!;
  }
}

export interface StoreOptions extends PutOptions {
  lastVerified?: number | null;
}

export interface DeleteOptions {
  /** Default `client` (subject to the write policy). */
  source?: ChangeSource;
  access?: AccessCheck;
  origin?: AuditOrigin;
  /** Recorded once the delete committed (when something was deleted). */
  audit?: AuditEvent;
}

/** Stores what clients upload; the write policy is the unit of work's (checkWritePolicy). */
export class HostedRepository extends Repository {
  async get(path: string): Promise<Content | null> {
    return this.local(path);
  }

  override async put(path: string, body: Readable, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    // Refused before a byte of the body is read; the unit of work checks again at the commit.
    await checkWritePolicy(this.app, this, opts.source ?? 'client', { puts: [{ path, kind: opts.kind, mutable: opts.mutable }] }, access);
    return this.store(path, body, opts, access);
  }

  override async putStaged(path: string, stage: () => Promise<StagedBlob>, digests: Digests, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    await checkWritePolicy(this.app, this, opts.source ?? 'client', { puts: [{ path, kind: opts.kind, mutable: opts.mutable }] }, access);
    const mismatch = digestMismatch(digests, opts.expected);
    if (mismatch) throw mismatch;
    if (opts.expectedSize !== undefined && opts.expectedSize !== digests.size) {
      throw new AppError('SIZE_INVALID', `Content is ${digests.size} bytes, ${opts.expectedSize} were declared`);
    }
    if (opts.maxSize !== undefined && digests.size > opts.maxSize) throw new AppError('PAYLOAD_TOO_LARGE', `Content exceeds the limit of ${opts.maxSize} bytes`);
    const staged = await stage();
    return this.commitStaged(path, staged, opts, access);
  }
}

/** Largest merged document kept in memory. */
const MEMO_MAX_BYTES = 1024 * 1024;

/**
 * Merged metadata by group and path (per app), with its bytes, while its stamp holds: a read of an
 * unchanged document costs the member lookups only (no lookup of the group's copy, no file read).
 * The stamp names every member asset and blob merged, so a stale entry is never served.
 */
const mergedMemos = new WeakMap<Stowage, LRUCache<string, { stamp: string; content: Content }>>();

function mergedMemo(app: Stowage): LRUCache<string, { stamp: string; content: Content }> {
  let memo = mergedMemos.get(app);
  if (!memo) {
    memo = new LRUCache({ maxSize: 64 * 1024 * 1024, sizeCalculation: (v) => v.content.bytes!.length + 256 });
    mergedMemos.set(app, memo);
  }
  return memo;
}

/** A member's answer in a group walk. */
export interface MemberResult<T> {
  member: Repository;
  value: T;
}

/**
 * Group behaviour, written once: one member walk (the format's routing hook, the cycle guard, one
 * error policy: a failing member is logged and skipped, it never hides what the others have),
 * first-member-wins reads, merged metadata, the writable member.
 */
export class GroupRepository extends Repository {
  /** Members in order (resolved now, so configuration changes apply at once). */
  async members(): Promise<Repository[]> {
    const out: Repository[] = [];
    for (const n of this.config.group?.memberNames ?? []) {
      const m = await this.app.repositories.find(n);
      if (m && m.online) out.push(m);
    }
    return out;
  }

  /** The members consulted for `path` (the format may route a path to some of them only). */
  async membersFor(path: string): Promise<Repository[]> {
    const all = await this.members();
    return this.format.groupMembers ? this.format.groupMembers(path, all, this) : all;
  }

  /**
   * The member walk: `visit` each member consulted for `path` in order (nested groups are
   * visited as members; `trail` carries the groups already entered, so a cycle ends), until
   * `first` and a member answered non-null. A member that fails is logged and skipped: it never
   * hides what the others have, and a miss everywhere stays a miss (404), as in Nexus.
   */
  async walk<T>(path: string, visit: (member: Repository, trail: string[]) => Promise<T | null>, opts: { first?: boolean; trail?: string[] } = {}): Promise<MemberResult<T>[]> {
    const trail = [...(opts.trail ?? []), this.name];
    const out: MemberResult<T>[] = [];
    for (const m of await this.membersFor(path)) {
      if (trail.includes(m.name)) continue;
      let value: T | null;
      try {
        value = await visit(m, trail);
      } catch (e) {
        this.app.log.warn(`Group '${this.name}': member '${m.name}' failed for ${path || '/'}, skipped:`, (e as Error).message ?? e);
        continue;
      }
      if (value === null) continue;
      out.push({ member: m, value });
      if (opts.first) break;
    }
    return out;
  }

  /** The non-group repositories reachable from this group, in order, each once (the cycle guard). */
  async leaves(trail: string[] = []): Promise<Repository[]> {
    const out: Repository[] = [];
    const seen = new Set<string>([...trail, this.name]);
    const visit = async (g: GroupRepository): Promise<void> => {
      for (const m of await g.members()) {
        if (seen.has(m.name) || m.format !== this.format) continue;
        seen.add(m.name);
        if (m instanceof GroupRepository) await visit(m);
        else out.push(m);
      }
    };
    await visit(this);
    return out;
  }

  async get(path: string, opts?: GetOptions): Promise<Content | null> {
    if (this.format.mergeMetadata && this.format.isMetadata?.(path)) return this.merged(path, opts);
    const [hit] = await this.walk(path, (m, trail) => m.get(path, { ...opts, groupTrail: trail }), { first: true, trail: opts?.groupTrail });
    return hit?.value ?? null;
  }

  /** Every member's copy of `path`, in member order. */
  async getAll(path: string, opts?: GetOptions): Promise<Array<{ member: Repository; content: Content }>> {
    const all = await this.walk(path, (m, trail) => m.get(path, { ...opts, groupTrail: trail }), { trail: opts?.groupTrail });
    return all.map((r) => ({ member: r.member, content: r.value }));
  }

  /**
   * Merged metadata, cached in the group's own storage and recomputed when any member's copy
   * changed (the stamp names every member asset and blob that went into it).
   */
  private async merged(path: string, opts?: GetOptions): Promise<Content | null> {
    let parts = await this.getAll(path, opts);
    if (parts.length === 0) return null;
    if (parts.length === 1) return parts[0].content;
    let stamp = parts.map((p) => `${p.member.name}:${p.content.asset.id}:${p.content.blob.sha256}`).join(',');
    const memoKey = `${this.id}\n${path}`;
    const memo = mergedMemo(this.app).get(memoKey);
    if (memo?.stamp === stamp) return memo.content;
    const cached = await this.local(path);
    if (cached && cached.asset.attributes.groupStamp === stamp) return this.memoize(memoKey, stamp, cached);
    let merged: Awaited<ReturnType<NonNullable<FormatPlugin['mergeMetadata']>>>;
    try {
      merged = await this.format.mergeMetadata!(path, parts, this);
    } catch (e) {
      // A member's document the format cannot read (a broken remote's error page) is that
      // member failing: found by merging each alone, logged and left out like any failure.
      parts = await this.walkParts(path, parts, e);
      if (parts.length === 1) return parts[0].content;
      stamp = parts.map((p) => `${p.member.name}:${p.content.asset.id}:${p.content.blob.sha256}`).join(',');
      merged = await this.format.mergeMetadata!(path, parts, this);
    }
    if (!merged) return parts[0].content;
    const r = await this.store(path, Readable.from([merged.body]), {
      contentType: merged.contentType,
      kind: 'metadata',
      attributes: { groupStamp: stamp },
      source: 'group',
    });
    return this.memoize(memoKey, stamp, this.wrap(r.asset, r.blob), merged.body);
  }

  /** Keeps a small merged document in memory, served from its bytes. */
  private async memoize(key: string, stamp: string, content: Content, body?: Buffer): Promise<Content> {
    if (content.blob.size > MEMO_MAX_BYTES) return content;
    const bytes = body ?? (await readSmall(await content.open(), MEMO_MAX_BYTES));
    const held: Content = { ...content, bytes, open: async (range) => Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]) };
    mergedMemo(this.app).set(key, { stamp, content: held });
    return held;
  }

  /** The parts the format can merge on their own; the others are logged. Throws `failure` when none is left. */
  private async walkParts(path: string, parts: MergeInput[], failure: unknown): Promise<MergeInput[]> {
    const usable: MergeInput[] = [];
    for (const p of parts) {
      try {
        await this.format.mergeMetadata!(path, [p], this);
        usable.push(p);
      } catch (e) {
        this.app.log.warn(`Group '${this.name}': member '${p.member.name}' failed for ${path}, skipped:`, (e as Error).message ?? e);
      }
    }
    if (usable.length === 0) throw failure;
    return usable;
  }

  async writableMember(): Promise<Repository> {
    const name = this.config.group?.writableMember;
    if (!name) throw new AppError('METHOD_NOT_ALLOWED', `Group '${this.name}' has no writable member; uploads are refused`);
    const m = await this.app.repositories.find(name);
    if (!m) throw new AppError('METHOD_NOT_ALLOWED', `Writable member '${name}' of group '${this.name}' does not exist`);
    return m;
  }

  override async put(path: string, body: Readable, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    return (await this.writableMember()).put(path, body, opts, access);
  }

  override async putStaged(path: string, stage: () => Promise<StagedBlob>, digests: Digests, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    return (await this.writableMember()).putStaged(path, stage, digests, opts, access);
  }

  override async delete(_path: string): Promise<boolean> {
    throw new AppError('METHOD_NOT_ALLOWED', `Content cannot be deleted through group '${this.name}'; delete it in the member`);
  }

  override async list(dir: string): Promise<DirEntry[]> {
    const seen = new Map<string, DirEntry>();
    for (const { value } of await this.walk('', (m) => m.list(dir))) for (const e of value) if (!seen.has(e.name)) seen.set(e.name, e);
    return [...seen.values()].sort((a, b) => Number(b.directory) - Number(a.directory) || (a.name < b.name ? -1 : 1));
  }
}
