/**
 * Cleanup policies and the repositories using them, in the database. A repository's link rows are
 * written in the same transaction as its configuration (RepositoryManager.linkWriters), and a
 * policy in use cannot be deleted (the link's foreign key restricts it too).
 */
import type { Db, Tx } from '../db/db.js';
import { fromJson, isForeignKeyViolation, isUniqueViolation, now, num, toJson } from '../db/db.js';
import { badRequest, conflict, notFound } from '../errors.js';
import type { RepositoryConfig } from '../repository/types.js';
import type { Criteria, Policy } from './policy.js';

function policy(r: Record<string, unknown>): Policy {
  return { id: num(r.id), name: String(r.name), format: String(r.format), notes: String(r.notes ?? ''), criteria: fromJson<Criteria>(r.criteria) };
}

export class PolicyStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<Policy[]> {
    return (await this.db('cleanup_policies').orderBy('name')).map(policy);
  }

  async get(name: string, q: Db | Tx = this.db): Promise<Policy | undefined> {
    const r = await q('cleanup_policies').where({ name }).first();
    return r ? policy(r) : undefined;
  }

  async require(name: string): Promise<Policy> {
    const p = await this.get(name);
    if (!p) throw notFound(`Cleanup policy '${name}' not found`);
    return p;
  }

  /** How many repositories use each policy, by policy id. */
  async inUseCounts(): Promise<Map<number, number>> {
    const rows = await this.db('repository_cleanup_policies').groupBy('policy_id').select('policy_id').count({ n: '*' });
    return new Map((rows as Array<Record<string, unknown>>).map((r) => [num(r.policy_id), num(r.n)]));
  }

  async inUseCount(policyId: number): Promise<number> {
    const r = await this.db('repository_cleanup_policies').where({ policy_id: policyId }).count({ n: '*' }).first();
    return num(r?.n ?? 0);
  }

  /** Ids of the repositories using a policy. */
  async repositoryIds(policyId: number): Promise<number[]> {
    return (await this.db('repository_cleanup_policies').where({ policy_id: policyId }).orderBy('repository_id').select('repository_id')).map((r) => num(r.repository_id));
  }

  /** A repository's policies, in the order its configuration names them. */
  async ofRepository(repositoryId: number): Promise<Policy[]> {
    const rows = await this.db('repository_cleanup_policies')
      .join('cleanup_policies', 'cleanup_policies.id', 'repository_cleanup_policies.policy_id')
      .where({ repository_id: repositoryId })
      .orderBy('position')
      .select('cleanup_policies.*');
    return rows.map(policy);
  }

  async create(p: Omit<Policy, 'id'>): Promise<Policy> {
    const t = now();
    try {
      await this.db('cleanup_policies').insert({ name: p.name, format: p.format, notes: p.notes, criteria: toJson(p.criteria), created_at: t, updated_at: t });
    } catch (e) {
      if (isUniqueViolation(e)) throw badRequest(`name: a cleanup policy named '${p.name}' already exists`, { field: 'name' });
      throw e;
    }
    return this.require(p.name);
  }

  /** Replaces notes, format and criteria. A policy in use keeps a format its repositories have. */
  async update(current: Policy, next: Omit<Policy, 'id'>, repositoryFormats: string[]): Promise<Policy> {
    if (next.format !== '*') {
      const other = repositoryFormats.find((f) => f !== next.format);
      if (other) throw badRequest(`format: the policy is used by a ${other} repository`, { field: 'format' });
    }
    await this.db('cleanup_policies')
      .where({ id: current.id })
      .update({ format: next.format, notes: next.notes, criteria: toJson(next.criteria), updated_at: now() });
    return this.require(current.name);
  }

  /** Deletes a policy; refused while a repository uses it. */
  async delete(p: Policy): Promise<void> {
    const inUse = await this.inUseCount(p.id);
    if (inUse > 0) throw conflict(`Cleanup policy '${p.name}' is used by ${inUse} ${inUse === 1 ? 'repository' : 'repositories'}; remove it from them first`);
    try {
      await this.db('cleanup_policies').where({ id: p.id }).delete();
    } catch (e) {
      if (isForeignKeyViolation(e)) throw conflict(`Cleanup policy '${p.name}' is in use`);
      throw e;
    }
  }

  /** Inside a repository's create/update transaction: its policy links as its configuration names them. */
  async writeLinks(tx: Tx, repositoryId: number, cfg: RepositoryConfig): Promise<void> {
    await tx('repository_cleanup_policies').where({ repository_id: repositoryId }).delete();
    const names = cfg.cleanup?.policyNames ?? [];
    if (names.length === 0) return;
    const ids = new Map((await tx('cleanup_policies').whereIn('name', names).select('id', 'name')).map((r) => [String(r.name), num(r.id)]));
    const missing = names.find((n) => !ids.has(n));
    if (missing) throw badRequest(`cleanup.policyNames: cleanup policy '${missing}' does not exist`, { field: 'cleanup.policyNames' });
    await tx('repository_cleanup_policies').insert(names.map((n, i) => ({ repository_id: repositoryId, policy_id: ids.get(n)!, position: i })));
  }
}
