import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Db } from '../db/db.js';
import { fromJson, now, num, toJson } from '../db/db.js';
import type { Principal } from './principal.js';

export interface AuditEvent {
  /** e.g. security.user, security.role, repository.repository, blobstore, repository.asset */
  domain: string;
  /** created | updated | deleted | changed-password | … */
  type: string;
  /** What it is about (a user id, a repository name, a path). */
  context: string;
  attributes?: Record<string, unknown>;
}

export interface AuditOrigin {
  principal: Principal | null;
  remoteAddress: string;
}

export interface AuditRow extends Required<AuditEvent> {
  id: number;
  timestamp: number;
  initiator: string;
  remoteAddress: string;
}

/**
 * The audit log: every security or configuration change and every content deletion, in the
 * database (queried by the REST API, shared by all nodes) and as JSON lines in
 * <dataDir>/log/audit.log for log shippers. Recording never fails the change it records.
 */
export class Audit {
  private readonly file: string;

  constructor(
    private readonly db: Db,
    dataDir: string,
    private readonly onError: (e: unknown) => void,
  ) {
    this.file = path.join(dataDir, 'log', 'audit.log');
  }

  async record(origin: AuditOrigin, event: AuditEvent): Promise<void> {
    // Which of the initiator's tokens did it (when one did): revoking that token is the response.
    const tokenId = origin.principal?.tokenId;
    if (tokenId) event = { ...event, attributes: { ...event.attributes, initiatorTokenId: tokenId } };
    const row = {
      timestamp: now(),
      domain: event.domain,
      type: event.type,
      context: event.context.slice(0, 1024),
      initiator: origin.principal?.userId ?? 'anonymous',
      remote_address: origin.remoteAddress.slice(0, 128),
      attributes: toJson(event.attributes ?? {}),
    };
    try {
      await this.db('audit_events').insert(row);
      await mkdir(path.dirname(this.file), { recursive: true });
      await appendFile(
        this.file,
        JSON.stringify({
          timestamp: new Date(row.timestamp).toISOString(),
          domain: row.domain,
          type: row.type,
          context: row.context,
          initiator: row.initiator,
          remoteAddress: row.remote_address,
          attributes: event.attributes ?? {},
        }) + '\n',
      );
    } catch (e) {
      this.onError(e);
    }
  }

  async list(
    filter: { domain?: string; type?: string; initiator?: string; context?: string; since?: number; until?: number },
    afterId: number,
    limit: number,
  ): Promise<AuditRow[]> {
    const q = this.db('audit_events').where('id', '>', afterId).orderBy('id').limit(limit);
    if (filter.domain) q.where('domain', filter.domain);
    if (filter.type) q.where('type', filter.type);
    if (filter.initiator) q.where('initiator', filter.initiator);
    if (filter.context) q.where('context', filter.context);
    if (filter.since !== undefined) q.where('timestamp', '>=', filter.since);
    if (filter.until !== undefined) q.where('timestamp', '<', filter.until);
    return (await q).map((r) => ({
      id: num(r.id),
      timestamp: num(r.timestamp),
      domain: String(r.domain),
      type: String(r.type),
      context: String(r.context),
      initiator: String(r.initiator),
      remoteAddress: String(r.remote_address),
      attributes: fromJson(r.attributes),
    }));
  }
}
