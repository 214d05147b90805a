import { randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
 * `<dataDir>/tmp/docker-uploads/<uuid>`.
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

  /** Appends a request body to the session (streamed); returns the new size. */
  async append(session: UploadSession, body: Readable): Promise<number> {
    await pipeline(body, createWriteStream(session.file, { flags: 'a' }));
    session.size = (await stat(session.file)).size;
    return session.size;
  }

  async remove(uuid: string): Promise<void> {
    await this.app.content.deleteProperty(SCOPE, uuid);
    await rm(this.file(uuid), { force: true });
  }
}
