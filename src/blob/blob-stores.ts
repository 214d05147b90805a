import path from 'node:path';
import type { Db } from '../db/db.js';
import { fromJson, now, num, toJson, isUniqueViolation } from '../db/db.js';
import { AppError, badRequest, conflict, notFound } from '../errors.js';
import type { BlobDriver } from './driver.js';
import { FileBlobDriver } from './file-driver.js';
import type { S3Settings } from './s3-driver.js';
import type { Secrets } from '../security/secrets.js';

export interface BlobStoreRow {
  id: number;
  name: string;
  type: string;
  attributes: Record<string, unknown>;
  created_at: number;
}

export interface FileSettings {
  /** Absolute, or relative to <dataDir>/blobs. */
  path: string;
}

type DriverFactory = (attrs: Record<string, unknown>, dataDir: string) => Promise<BlobDriver>;

const FACTORIES: Record<string, DriverFactory> = {
  file: async (attrs, dataDir) => new FileBlobDriver(path.resolve(dataDir, 'blobs', String(attrs.path))),
  // Loaded on first use: the S3 client library costs most of a second of start-up otherwise.
  s3: async (attrs) => new (await import('./s3-driver.js')).S3BlobDriver(attrs as unknown as S3Settings),
};

/** Attributes stored encrypted (AES-GCM, see Secrets), decrypted only to build a driver. */
const SECRET_ATTRIBUTES = ['secretAccessKey'];

export function driverTypes(): string[] {
  return Object.keys(FACTORIES);
}

function normalise(r: Record<string, unknown>): BlobStoreRow {
  return {
    id: num(r.id),
    name: String(r.name),
    type: String(r.type),
    attributes: fromJson(r.attributes),
    created_at: num(r.created_at),
  };
}

/** Blob store configurations and their live drivers (one per store, created on first use). */
export class BlobStores {
  private readonly drivers = new Map<number, BlobDriver>();

  constructor(
    private readonly db: Db,
    private readonly dataDir: string,
    /** Without it (tools, tests) secrets are stored as given. */
    private readonly secrets?: Secrets,
  ) {}

  /** Attributes as stored: secrets encrypted (an already encrypted one, kept from before, as it is). */
  private sealed(attributes: Record<string, unknown>): Record<string, unknown> {
    const out = { ...attributes };
    for (const k of SECRET_ATTRIBUTES) if (this.secrets && typeof out[k] === 'string' && out[k] !== '') out[k] = this.secrets.encrypt(out[k] as string);
    return out;
  }

  /** Attributes as a driver needs them: secrets decrypted (plain ones, stored before encryption, pass through). */
  private opened(attributes: Record<string, unknown>): Record<string, unknown> {
    const out = { ...attributes };
    for (const k of SECRET_ATTRIBUTES) {
      if (!this.secrets || typeof out[k] !== 'string') continue;
      try {
        out[k] = this.secrets.decrypt(out[k] as string);
      } catch {
        throw new AppError('INTERNAL', `Blob store setting ${k} cannot be decrypted: was the secret key (STOWAGE_SECRET_KEY or secret.key) changed?`);
      }
    }
    return out;
  }

  async list(): Promise<BlobStoreRow[]> {
    return (await this.db('blob_stores').orderBy('name')).map(normalise);
  }

  async byName(name: string): Promise<BlobStoreRow | undefined> {
    const r = await this.db('blob_stores').where({ name }).first();
    return r ? normalise(r) : undefined;
  }

  async byId(id: number): Promise<BlobStoreRow | undefined> {
    const r = await this.db('blob_stores').where({ id }).first();
    return r ? normalise(r) : undefined;
  }

  async require(name: string): Promise<BlobStoreRow> {
    const s = await this.byName(name);
    if (!s) throw notFound(`Blob store '${name}' not found`);
    return s;
  }

  async driver(storeId: number): Promise<BlobDriver> {
    let d = this.drivers.get(storeId);
    if (!d) {
      const row = await this.byId(storeId);
      if (!row) throw new AppError('NOT_FOUND', `Blob store ${storeId} not found`);
      d = this.drivers.get(storeId) ?? (await this.makeDriver(row.type, row.attributes));
      this.drivers.set(storeId, d);
    }
    return d;
  }

  async makeDriver(type: string, attributes: Record<string, unknown>): Promise<BlobDriver> {
    const f = FACTORIES[type];
    if (!f) throw badRequest(`Unknown blob store type '${type}'`, { field: 'type' });
    return f(this.opened(attributes), this.dataDir);
  }

  /** Creates a store after checking its driver can reach the backend. */
  async create(name: string, type: string, attributes: Record<string, unknown>): Promise<BlobStoreRow> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(name)) {
      throw badRequest(`Invalid blob store name '${name}': letters, digits, '.', '_' and '-' only`, { field: 'name' });
    }
    const driver = await this.makeDriver(type, attributes);
    try {
      await driver.check();
    } catch (e) {
      throw badRequest(`Blob store '${name}' is not usable: ${(e as Error).message}`);
    }
    try {
      const [row] = await this.db('blob_stores')
        .insert({ name, type, attributes: toJson(this.sealed(attributes)), created_at: now() })
        .returning('*');
      return normalise(row);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`Blob store '${name}' already exists`);
      throw e;
    }
  }

  async update(name: string, attributes: Record<string, unknown>): Promise<BlobStoreRow> {
    const cur = await this.require(name);
    const driver = await this.makeDriver(cur.type, attributes);
    try {
      await driver.check();
    } catch (e) {
      throw badRequest(`Blob store '${name}' is not usable: ${(e as Error).message}`);
    }
    await this.db('blob_stores')
      .where({ id: cur.id })
      .update({ attributes: toJson(this.sealed(attributes)) });
    await this.drivers.get(cur.id)?.close?.();
    this.drivers.delete(cur.id);
    return (await this.byId(cur.id))!;
  }

  async delete(name: string): Promise<void> {
    const cur = await this.require(name);
    const used = await this.db('repositories').where({ blob_store_id: cur.id }).first();
    if (used) throw conflict(`Blob store '${name}' is used by repository '${used.name}'`);
    const blobs = await this.db('blobs').where({ store_id: cur.id }).first();
    if (blobs) throw conflict(`Blob store '${name}' still holds blobs; run the blob GC task first`);
    await this.db('blob_stores').where({ id: cur.id }).delete();
    await this.drivers.get(cur.id)?.close?.();
    this.drivers.delete(cur.id);
  }

  /** The embedded default: a file store named `default` under <dataDir>/blobs/default. */
  async ensureDefault(): Promise<void> {
    if (!(await this.byName('default'))) {
      try {
        await this.create('default', 'file', { path: 'default' });
      } catch (e) {
        if (!(e instanceof AppError && e.code === 'CONFLICT')) throw e;
      }
    }
  }

  async close(): Promise<void> {
    for (const d of this.drivers.values()) await d.close?.();
    this.drivers.clear();
  }
}
