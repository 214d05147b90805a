import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Digests } from '../../src/blob/digest-stream.js';
import type { StagedBlob } from '../../src/blob/blob-service.js';
import type { Repository } from '../../src/repository/repository.js';
import { changeProperties } from '../../src/repository/unit-of-work.js';
import type { Stowage } from '../../src/stowage.js';
import { ociError } from './errors.js';
import { DOCKER_DIGESTS } from './changes.js';

const SCOPE = 'docker.upload';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface UploadSession {
  uuid: string;
  repositoryId: number;
  /** The blob store receiving the bytes (the repository's when the session began). */
  storeId: number;
  name: string;
  /** Bytes received so far. */
  size: number;
  startedAt: number;
}

interface SessionRow {
  repositoryId: number;
  storeId?: number;
  name: string;
  startedAt: number;
}

/**
 * Blob upload sessions that survive across requests and nodes: the session row lives in the
 * `properties` table, the bytes received so far in the repository's blob store (an upload in
 * pieces, `BlobAppender`), so any node sharing the database and the store can continue or finish
 * it; no node keeps state another needs. Each chunk is hashed as it arrives (a `ChunkedBlob`,
 * state in this process, rebuilt from the store on a node that lacks it), so the final PUT only
 * finishes the digests and publishes the bytes.
 */
export class UploadSessions {
  constructor(private readonly app: Stowage) {}

  /** The session row is written as a change of the repository (a property: no policy, no component). */
  async create(repo: Repository, name: string): Promise<UploadSession> {
    const uuid = randomUUID();
    const startedAt = Date.now();
    const row: SessionRow = { repositoryId: repo.id, storeId: repo.blobStoreId, name, startedAt };
    await repo.change({ source: 'client' }, (c) => c.setProperty(SCOPE, uuid, JSON.stringify(row)));
    return { uuid, repositoryId: repo.id, storeId: repo.blobStoreId, name, size: 0, startedAt };
  }

  /** The session, or BLOB_UPLOAD_UNKNOWN (also for a session of another repository or image). */
  async get(repositoryId: number, name: string, uuid: string): Promise<UploadSession> {
    const unknown = () => ociError('NOT_FOUND', 'BLOB_UPLOAD_UNKNOWN', `Upload ${uuid} not found`);
    if (!UUID_RE.test(uuid)) throw unknown();
    const value = await this.app.content.getProperty(SCOPE, uuid);
    if (!value) throw unknown();
    const s = JSON.parse(value) as SessionRow;
    // A session begun before uploads moved into the blob store (no storeId) has its bytes on some
    // node's disk: it cannot be continued.
    if (s.repositoryId !== repositoryId || s.name !== name || typeof s.storeId !== 'number') throw unknown();
    const size = await (await this.app.blobStores.driver(s.storeId)).appendedSize(uuid);
    return { uuid, repositoryId, storeId: s.storeId, name, size, startedAt: s.startedAt };
  }

  /**
   * Appends a request body to the session (streamed, hashed on the way); returns the new size.
   * `at`: the offset the chunk must start at (ChunkRefused otherwise, also while another chunk
   * of the session is being received).
   */
  async append(session: UploadSession, body: Readable, at?: number): Promise<number> {
    const chunked = await this.app.blobs.chunkedBlob(session.storeId, session.uuid, DOCKER_DIGESTS);
    session.size = await chunked.append(body, { at });
    return session.size;
  }

  /** The digests of every byte received (from the hash state; the bytes are not read again). */
  async digests(session: UploadSession): Promise<Digests> {
    const d = await (await this.app.blobs.chunkedBlob(session.storeId, session.uuid, DOCKER_DIGESTS)).finish();
    session.size = d.size;
    return d;
  }

  /** The bytes received (for a digest the hash state does not keep, e.g. sha512). */
  async read(session: UploadSession): Promise<Readable> {
    return (await this.app.blobStores.driver(session.storeId)).readAppended(session.uuid, 0);
  }

  /** Publishes the finished upload as staged content (consumes it; the session row stays until `remove`). */
  async stage(session: UploadSession, digests: Digests): Promise<StagedBlob> {
    return this.app.blobs.stageAppended(session.storeId, session.uuid, digests);
  }

  /** Ends a session of `repo` (finished or cancelled): its row and its bytes go. */
  async remove(repo: Repository, session: Pick<UploadSession, 'uuid' | 'storeId'>): Promise<void> {
    await repo.change({ source: 'client' }, (c) => c.deleteProperty(SCOPE, session.uuid));
    await this.app.blobs.deleteAppended(session.storeId, session.uuid);
  }

  /**
   * Purge: deletes a session row, as a change of its repository; the row of a repository deleted
   * meanwhile (or an unreadable one) as a property of no repository.
   */
  private async forget(repositoryId: number | undefined, uuid: string): Promise<void> {
    const repo = (await this.app.repositories.list()).find((r) => r.id === repositoryId);
    if (repo) await repo.change({ source: 'gc' }, (c) => c.deleteProperty(SCOPE, uuid));
    else await changeProperties(this.app, (c) => c.delete(SCOPE, uuid));
  }

  /**
   * Removes sessions idle for `olderThanMs` (no byte received since: the last piece's time, else
   * the start), and uploads in the blob stores that no session row names (a crash between the two
   * writes). A kill -9 mid-PATCH leaves the session row and the bytes appended so far: the session
   * stays valid (its Range says what arrived, a PUT still verifies the digest) until this purges it.
   */
  async purge(olderThanMs: number): Promise<{ sessions: number; files: number; bytes: number }> {
    const cutoff = Date.now() - olderThanMs;
    let sessions = 0;
    let files = 0;
    let bytes = 0;
    const known = new Map<string, SessionRow | null>();
    for (const { key: uuid, value } of await this.app.content.listProperties(SCOPE)) {
      let row: SessionRow | null = null;
      try {
        row = JSON.parse(value) as SessionRow;
      } catch {
        // An unreadable row is as good as abandoned.
      }
      known.set(uuid, row);
    }
    const seen = new Set<string>();
    for (const store of await this.app.blobStores.list()) {
      const driver = await this.app.blobStores.driver(store.id);
      for await (const u of driver.listAppended()) {
        const row = known.get(u.id);
        if (row !== undefined) seen.add(u.id);
        const lastActive = Math.max(row?.startedAt ?? 0, u.modified.getTime());
        if (lastActive >= cutoff) continue;
        // Re-check: a session created since the listing owns its bytes.
        if (row === undefined && (await this.app.content.getProperty(SCOPE, u.id))) continue;
        await this.app.blobs.deleteAppended(store.id, u.id);
        if (row !== undefined) {
          await this.forget(row?.repositoryId, u.id);
          sessions++;
        }
        files++;
        bytes += u.size;
      }
    }
    // Sessions that never received a byte (nothing in any store).
    for (const [uuid, row] of known) {
      if (seen.has(uuid) || (row?.startedAt ?? 0) >= cutoff) continue;
      await this.forget(row?.repositoryId, uuid);
      sessions++;
    }
    return { sessions, files, bytes };
  }
}
