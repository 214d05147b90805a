import { pipeline, type Readable } from 'node:stream';
import { contentTypeGuard, type GuardOptions } from './content-type-guard.js';
import { AppError } from '../errors.js';
import { digestMismatch, type BlobRow, type StagedBlob } from '../blob/blob-service.js';
import type { Digests } from '../blob/digest-stream.js';
import type { AssetRow, DirEntry } from '../content/types.js';
import type { Stowage } from '../stowage.js';
import type { FormatPlugin } from './format.js';
import type { AccessCheck, Content, GetOptions, PutOptions, PutResult, RepositoryConfig, RepositoryType } from './types.js';

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
  async delete(path: string): Promise<boolean> {
    const a = await this.app.content.deleteAsset(this.id, path);
    return !!a;
  }

  /** Immediate children of a folder, for browsing. */
  async list(dir: string): Promise<DirEntry[]> {
    return this.app.content.listChildren(this.id, dir);
  }

  /** The repository's own stored asset at `path`, wrapped as Content. */
  async local(path: string): Promise<Content | null> {
    const asset = await this.app.content.findAsset(this.id, path);
    if (!asset) return null;
    const blob = await this.app.blobs.get(asset.blob_id);
    if (!blob) return null;
    return this.wrap(asset, blob);
  }

  wrap(asset: AssetRow, blob: BlobRow): Content {
    return { asset, blob, repositoryName: this.name, open: (range) => this.app.blobs.open(blob, range) };
  }

  /**
   * Stream → blob store (hashed once) → one transaction writing the asset → settle; on any
   * failure nothing is visible. `check` runs inside the transaction (write policy).
   */
  protected async store(
    path: string,
    body: Readable,
    opts: PutOptions & { lastVerified?: number | null },
    check?: (existing: AssetRow | undefined) => void,
  ): Promise<PutResult> {
    const guard = this.strictContentType(path, opts.kind, { drain: true });
    const source = guard ? pipeline(body, guard, () => undefined) : body;
    const staged = await this.app.blobs.stage(this.blobStoreId, source, opts);
    return this.commitStaged(path, staged, opts, check);
  }

  /** With `strictContentTypeValidation`, a check that the bytes fit the file name's type (not for generated metadata). */
  protected strictContentType(path: string, kind: string | undefined, opts: GuardOptions) {
    if (!this.config.storage.strictContentTypeValidation || kind === 'metadata') return null;
    return contentTypeGuard(path, opts);
  }

  protected async commitStaged(
    path: string,
    staged: StagedBlob,
    opts: PutOptions & { lastVerified?: number | null },
    check?: (existing: AssetRow | undefined) => void,
  ): Promise<PutResult> {
    return this.app.blobs.ingest(staged, async (tx, blob) => {
      if (check) check(await this.app.content.findAsset(this.id, path, tx));
      const r = await this.app.content.putAsset(tx, {
        repositoryId: this.id,
        path,
        blobId: blob.id,
        contentType: opts.contentType,
        kind: opts.kind,
        component: opts.component,
        attributes: opts.attributes,
        lastVerified: opts.lastVerified,
        uploader: opts.uploader,
      });
      return { asset: r.asset, blob, created: r.created };
    });
  }
}

/** A client upload records who sent it (the request's user and address, carried by its AccessCheck). */
function withUploader(opts: PutOptions, access?: AccessCheck): PutOptions {
  return opts.uploader || !access?.uploader ? opts : { ...opts, uploader: access.uploader };
}

export class HostedRepository extends Repository {
  get writePolicy() {
    return this.config.storage.writePolicy ?? 'ALLOW_ONCE';
  }

  async get(path: string): Promise<Content | null> {
    return this.local(path);
  }

  /** Refuses writes the policy forbids. Metadata the format generates is always writable. */
  private policyCheck(kind: string | undefined, existing: AssetRow | undefined): void {
    if (kind === 'metadata') return;
    if (this.writePolicy === 'DENY') throw new AppError('WRITE_POLICY', `Repository is read only: ${this.name}`);
    if (this.writePolicy === 'ALLOW_ONCE' && existing) {
      throw new AppError('WRITE_POLICY', `Repository does not allow updating assets: ${this.name}`);
    }
  }

  /** Write policy and the edit permission for a redeploy, checked before any byte is read. */
  private async mayWrite(path: string, kind: string | undefined, access?: AccessCheck): Promise<void> {
    const existing = await this.app.content.findAsset(this.id, path);
    this.policyCheck(kind, existing);
    if (existing && access) await access.require('edit');
  }

  override async put(path: string, body: Readable, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    await this.mayWrite(path, opts.kind, access);
    return this.store(path, body, withUploader(opts, access), (e) => this.policyCheck(opts.kind, e));
  }

  override async putStaged(path: string, stage: () => Promise<StagedBlob>, digests: Digests, opts: PutOptions, access?: AccessCheck): Promise<PutResult> {
    await this.mayWrite(path, opts.kind, access);
    const mismatch = digestMismatch(digests, opts.expected);
    if (mismatch) throw mismatch;
    if (opts.expectedSize !== undefined && opts.expectedSize !== digests.size) {
      throw new AppError('SIZE_INVALID', `Content is ${digests.size} bytes, ${opts.expectedSize} were declared`);
    }
    if (opts.maxSize !== undefined && digests.size > opts.maxSize) throw new AppError('PAYLOAD_TOO_LARGE', `Content exceeds the limit of ${opts.maxSize} bytes`);
    const staged = await stage();
    return this.commitStaged(path, staged, withUploader(opts, access), (e) => this.policyCheck(opts.kind, e));
  }

  override async delete(path: string): Promise<boolean> {
    if (this.writePolicy === 'DENY') throw new AppError('WRITE_POLICY', `Repository is read only: ${this.name}`);
    return super.delete(path);
  }
}

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

  async get(path: string, opts?: GetOptions): Promise<Content | null> {
    if (this.format.mergeMetadata && this.format.isMetadata?.(path)) return this.merged(path);
    for (const m of await this.membersFor(path)) {
      const c = await m.get(path, opts).catch((e) => {
        // A failing member (remote down, no stale copy) must not hide the others.
        if (e instanceof AppError && e.status < 500) throw e;
        return null;
      });
      if (c) return c;
    }
    return null;
  }

  /** Every member's copy of `path`, in member order. */
  async getAll(path: string): Promise<Array<{ member: Repository; content: Content }>> {
    const out: Array<{ member: Repository; content: Content }> = [];
    for (const m of await this.membersFor(path)) {
      const c = await m.get(path).catch(() => null);
      if (c) out.push({ member: m, content: c });
    }
    return out;
  }

  /**
   * Merged metadata, cached in the group's own storage and recomputed when any member's copy
   * changed (the stamp names every member asset and blob that went into it).
   */
  private async merged(path: string): Promise<Content | null> {
    const parts = await this.getAll(path);
    if (parts.length === 0) return null;
    if (parts.length === 1) return parts[0].content;
    const stamp = parts.map((p) => `${p.member.name}:${p.content.asset.id}:${p.content.blob.sha256}`).join(',');
    const cached = await this.local(path);
    if (cached && cached.asset.attributes.groupStamp === stamp) return cached;
    const merged = await this.format.mergeMetadata!(path, parts, this);
    if (!merged) return parts[0].content;
    const { Readable } = await import('node:stream');
    const r = await this.store(path, Readable.from([merged.body]), {
      contentType: merged.contentType,
      kind: 'metadata',
      attributes: { groupStamp: stamp },
    });
    return this.wrap(r.asset, r.blob);
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
    for (const m of await this.members()) {
      for (const e of await m.list(dir).catch(() => [] as DirEntry[])) if (!seen.has(e.name)) seen.set(e.name, e);
    }
    return [...seen.values()].sort((a, b) => Number(b.directory) - Number(a.directory) || (a.name < b.name ? -1 : 1));
  }
}
