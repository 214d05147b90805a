import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { Digests } from '../../src/blob/digest-stream.js';
import type { Stowage } from '../../src/stowage.js';
import { ociError } from './errors.js';

const SCOPE = 'docker.upload';
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface UploadSession {
  uuid: string;
  repositoryId: number;
  name: string;
  file: string;
  /** Bytes received so far (the size of the staging file). */
  size: number;
  startedAt: number;
}

/**
 * Blob upload sessions that survive across requests and nodes: the session row lives in the
 * `properties` table, the bytes received so far in an append-only file under
 * `<dataDir>/tmp/docker-uploads/<uuid>`. Each chunk is hashed as it arrives (a `ChunkedBlob` of
 * the blob service, state in this process; rebuilt from the file on a node that lacks it), so the
 * final PUT only finishes the digests and moves the file into the blob store.
 */
export class UploadSessions {
  private readonly dir: string;
  constructor(private readonly app: Stowage) {
    this.dir = path.join(app.config.dataDir, 'tmp', 'docker-uploads');
  }

  private file(uuid: string): string {
    return path.join(this.dir, uuid);
  }

  async create(repositoryId: number, name: string): Promise<UploadSession> {
    const uuid = randomUUID();
    await mkdir(this.dir, { recursive: true });
    const file = this.file(uuid);
    await writeFile(file, Buffer.alloc(0));
    const startedAt = Date.now();
    await this.app.content.setProperty(SCOPE, uuid, JSON.stringify({ repositoryId, name, startedAt }));
    return { uuid, repositoryId, name, file, size: 0, startedAt };
  }

  /** The session, or BLOB_UPLOAD_UNKNOWN (also for a session of another repository or image). */
  async get(repositoryId: number, name: string, uuid: string): Promise<UploadSession> {
    const unknown = () => ociError('NOT_FOUND', 'BLOB_UPLOAD_UNKNOWN', `Upload ${uuid} not found`);
    if (!UUID_RE.test(uuid)) throw unknown();
    const row = await this.app.content.getProperty(SCOPE, uuid);
    if (!row) throw unknown();
    const s = JSON.parse(row) as { repositoryId: number; name: string; startedAt: number };
    if (s.repositoryId !== repositoryId || s.name !== name) throw unknown();
    const file = this.file(uuid);
    const size = await stat(file).then(
      (st) => st.size,
      () => null,
    );
    if (size === null) throw unknown();
    return { uuid, repositoryId, name, file, size, startedAt: s.startedAt };
  }

  /**
   * Appends a request body to the session (streamed, hashed on the way); returns the new size.
   * `at`: the offset the chunk must start at (ChunkRefused otherwise, also while another chunk
   * of the session is being received).
   */
  async append(session: UploadSession, body: Readable, at?: number): Promise<number> {
    session.size = await this.app.blobs.chunked.get(session.uuid, session.file).append(body, { at });
    return session.size;
  }

  /** The digests of every byte received (from the hash state; the bytes are not read again). */
  async digests(session: UploadSession): Promise<Digests> {
    const d = await this.app.blobs.chunked.get(session.uuid, session.file).finish();
    session.size = d.size;
    return d;
  }

  async remove(uuid: string): Promise<void> {
    this.app.blobs.chunked.remove(uuid);
    await this.app.content.deleteProperty(SCOPE, uuid);
    await rm(this.file(uuid), { force: true });
  }

  /**
   * Removes sessions idle for `olderThanMs` (no byte received since: the staging file's mtime,
   * else the start), and staging files no session row names (a crash between the two writes).
   * A kill -9 mid-PATCH leaves the session row and the bytes appended so far: the session stays
   * valid (its Range says what arrived, a PUT still verifies the digest) until this purges it.
   */
  async purge(olderThanMs: number): Promise<{ sessions: number; files: number; bytes: number }> {
    const cutoff = Date.now() - olderThanMs;
    let sessions = 0;
    let files = 0;
    let bytes = 0;
    const known = new Set<string>();
    const rows = await this.app.db('properties').where({ scope: SCOPE }).select('key', 'value');
    for (const r of rows) {
      const uuid = String(r.key);
      known.add(uuid);
      let startedAt = 0;
      try {
        startedAt = Number((JSON.parse(String(r.value)) as { startedAt?: number }).startedAt) || 0;
      } catch {
        // An unreadable row is as good as abandoned.
      }
      const st = UUID_RE.test(uuid) ? await stat(this.file(uuid)).catch(() => null) : null;
      const lastActive = Math.max(startedAt, st ? st.mtimeMs : 0);
      if (lastActive >= cutoff) continue;
      this.app.blobs.chunked.remove(uuid);
      await this.app.content.deleteProperty(SCOPE, uuid);
      if (UUID_RE.test(uuid)) await rm(this.file(uuid), { force: true });
      sessions++;
      if (st) {
        files++;
        bytes += st.size;
      }
    }
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (known.has(name)) continue;
      const p = path.join(this.dir, name);
      const st = await stat(p).catch(() => null);
      if (!st || !st.isFile() || st.mtimeMs >= cutoff) continue;
      // Re-check: a session created since the listing owns its file.
      if (UUID_RE.test(name) && (await this.app.content.getProperty(SCOPE, name))) continue;
      await rm(p, { force: true });
      files++;
      bytes += st.size;
    }
    return { sessions, files, bytes };
  }
}
