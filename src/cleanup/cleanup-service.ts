/**
 * Cleanup policies at work: repositories referencing them (checked and linked with their
 * configuration), previews, and runs — the daily task `repository.cleanup` and "run now" of one
 * policy, both through the task service, whose lease keeps two nodes from running it at once.
 */
import { AppError, badRequest } from '../errors.js';
import type { Repository } from '../repository/repository.js';
import type { RepositoryConfig } from '../repository/types.js';
import type { Stowage } from '../stowage.js';
import type { TaskType } from '../tasks/task-service.js';
import { cleanRepository, type RepositoryReport } from './cleanup-run.js';
import { appliesTo, type Policy } from './policy.js';
import { PolicyStore } from './policy-store.js';
import { selectComponents, type Candidate, type NameKey } from './selection.js';

export const CLEANUP_TASK = 'repository.cleanup';
/** Default for what a format reclaims after cleanup: content stored, pushed or read within it stays (uploads in flight). */
const DEFAULT_GRACE_SECONDS = 3600;

export interface PreviewPage {
  items: Array<Candidate & { repository: Repository }>;
  totals: { components: number; assets: number; bytes: number };
  continuationToken: string | null;
}

/** A preview position: the last item sent (its name and id). */
interface PreviewToken extends NameKey {
  id: number;
}

function encodeToken(t: PreviewToken): string {
  return Buffer.from(JSON.stringify([t.namespace, t.name, t.id])).toString('base64url');
}

function decodeToken(s: string | null): PreviewToken | null {
  if (!s) return null;
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && typeof v[0] === 'string' && typeof v[1] === 'string' && Number.isInteger(v[2])) return { namespace: v[0], name: v[1], id: v[2] };
  } catch {
    /* below */
  }
  throw badRequest('continuationToken: not a token this API sent', { field: 'continuationToken' });
}

export class CleanupService {
  readonly policies: PolicyStore;
  /** The time ages are judged by. A seam for tests, which move it forward instead of waiting days. */
  clock: () => number = () => Date.now();

  constructor(private readonly app: Stowage) {
    this.policies = new PolicyStore(app.db);
  }

  /** Hooks into repository configuration and the task service (called once by Stowage). */
  install(): void {
    this.app.repositories.validators.push((cfg) => this.checkRepository(cfg));
    this.app.repositories.linkWriters.push((tx, id, cfg) => this.policies.writeLinks(tx, id, cfg));
    this.app.tasks.register(this.taskType());
  }

  /** A repository's `cleanup.policyNames`: existing policies for its format, each once; none on a group (as Nexus). */
  private async checkRepository(cfg: RepositoryConfig): Promise<void> {
    const names = cfg.cleanup?.policyNames ?? [];
    if (names.length === 0) return;
    const field = 'cleanup.policyNames';
    if (cfg.type === 'group') throw badRequest(`${field}: group repositories have no cleanup policies (their members do)`, { field });
    if (new Set(names).size !== names.length) throw badRequest(`${field}: a policy is listed twice`, { field });
    for (const n of names) {
      const p = await this.policies.get(n);
      if (!p) throw badRequest(`${field}: cleanup policy '${n}' does not exist`, { field });
      if (!appliesTo(p, cfg.format)) throw badRequest(`${field}: cleanup policy '${n}' is for ${p.format}, not ${cfg.format}`, { field });
    }
  }

  /** The formats of the repositories that use a policy. */
  async repositoriesUsing(policy: Policy): Promise<Repository[]> {
    const ids = new Set(await this.policies.repositoryIds(policy.id));
    return (await this.app.repositories.list()).filter((r) => ids.has(r.id));
  }

  /**
   * What a run of `policy` would delete in `repo` now: a page of components after `token`, and
   * the totals of the whole selection (read a page of names at a time, never all in memory).
   */
  async preview(policy: Policy, repo: Repository, token: string | null, limit: number, filter?: string): Promise<PreviewPage> {
    if (!appliesTo(policy, repo.format.name))
      throw badRequest(`repository: cleanup policy '${policy.name}' is for ${policy.format}, not ${repo.format.name}`, { field: 'repository' });
    if (repo.type === 'group') throw badRequest(`repository: '${repo.name}' is a group; preview its members`, { field: 'repository' });
    await this.app.content.flushDownloads();
    const after = decodeToken(token);
    const asOf = this.clock();
    const totals = { components: 0, assets: 0, bytes: 0 };
    const items: PreviewPage['items'] = [];
    let more = false;
    const needle = filter?.toLowerCase();
    const isAfter = (c: Candidate) =>
      !after || c.namespace > after.namespace || (c.namespace === after.namespace && (c.name > after.name || (c.name === after.name && c.id > after.id)));
    for await (const page of selectComponents(this.app.db, repo, policy, asOf)) {
      for (const c of page) {
        if (needle && !`${c.namespace}/${c.name}/${c.version}`.toLowerCase().includes(needle)) continue;
        totals.components++;
        totals.assets += c.assetCount;
        totals.bytes += c.bytes;
        if (!isAfter(c)) continue;
        if (items.length < limit) items.push({ ...c, repository: repo });
        else more = true;
      }
    }
    const last = items.at(-1);
    return { items, totals, continuationToken: more && last ? encodeToken(last) : null };
  }

  /**
   * Runs cleanup: every repository with policies (all its policies), or only `policyName` on the
   * repositories using it; `repositoryName` narrows either to one repository.
   */
  async run(attributes: Record<string, unknown>, ctx?: Parameters<TaskType['run']>[2]): Promise<RepositoryReport[]> {
    const asOf = this.clock();
    const grace = attributes.graceSeconds === undefined || attributes.graceSeconds === '' ? DEFAULT_GRACE_SECONDS : Number(attributes.graceSeconds);
    if (!Number.isFinite(grace) || grace < 0) throw new AppError('BAD_REQUEST', `graceSeconds: expected a number ≥ 0, got ${String(attributes.graceSeconds)}`);
    const only = attributes.policyName ? await this.policies.require(String(attributes.policyName)) : undefined;
    let repos = (await this.app.repositories.list()).filter((r) => r.type !== 'group');
    if (attributes.repositoryName) repos = repos.filter((r) => r.name === String(attributes.repositoryName));
    const plan: Array<{ repo: Repository; policies: Policy[] }> = [];
    for (const repo of repos) {
      const policies = (await this.policies.ofRepository(repo.id)).filter((p) => (!only || p.id === only.id) && appliesTo(p, repo.format.name));
      const unfinished = await this.app.db('cleanup_journal').where({ repository_id: repo.id }).first('id');
      if (policies.length > 0 || unfinished) plan.push({ repo, policies });
    }
    ctx?.log(`Cleaning ${plan.length} repositories${only ? ` with policy '${only.name}'` : ''}, ages as of ${new Date(asOf).toISOString()}`);
    ctx?.progress(0, plan.length);
    const reports: RepositoryReport[] = [];
    for (const [i, { repo, policies }] of plan.entries()) {
      ctx?.signal.throwIfAborted();
      reports.push(await cleanRepository(this.app, repo, policies, { asOf, graceMs: grace * 1000, ctx }));
      ctx?.progress(i + 1, plan.length);
    }
    return reports;
  }

  private taskType(): TaskType {
    return {
      id: CLEANUP_TASK,
      name: 'Admin - Cleanup repositories using their associated policies',
      defaultInstance: { intervalSeconds: 24 * 3600, attributes: {} },
      properties: [
        { id: 'policyName', label: 'Cleanup policy', type: 'string', help: 'Only this policy, on the repositories using it (all policies when empty)' },
        { id: 'repositoryName', label: 'Repository', type: 'repository', help: 'Only this repository (all with policies when empty)' },
        {
          id: 'graceSeconds',
          label: 'Grace period (seconds)',
          type: 'number',
          min: 0,
          default: DEFAULT_GRACE_SECONDS,
          help: 'What a format frees after the deleted components (untagged docker manifests, layers) is kept when stored or read within this many seconds',
        },
      ],
      run: async (_app, attributes, ctx) => {
        const reports = await this.run(attributes, ctx);
        const sum = (k: keyof RepositoryReport) => reports.reduce((n, r) => n + (r[k] as number), 0);
        return `Cleaned ${reports.length} repositories: deleted ${sum('componentsDeleted')} components and ${sum('assetsDeleted')} assets; reclaimed ${sum('bytesReclaimed')} bytes`;
      },
    };
  }

  /** The task that runs cleanup (created at first start; made again if it was deleted). */
  async task(): Promise<string> {
    const found = (await this.app.tasks.list(CLEANUP_TASK, { limit: 1 }))[0];
    if (found) return found.task_id;
    const t = this.taskType();
    return (await this.app.tasks.create(t.name, t.id, 24 * 3600, {})).task_id;
  }
}
