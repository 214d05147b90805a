/**
 * Maven's task types, as Nexus names them: "Maven - Delete SNAPSHOT" (keep the newest N builds
 * of each snapshot version, remove older builds past N days, optionally all builds once the
 * release exists) and "Maven - Rebuild metadata". Deletes go through the unit of work (source
 * `cleanup`), so the maintenance hook rewrites the metadata of what they touched.
 */
import { AppError } from '../../src/errors.js';
import type { ComponentRow } from '../../src/content/types.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';
import type { TaskType } from '../../src/tasks/task-service.js';
import type { TaskRunContext } from '../../src/tasks/task-runs.js';
import { parseMavenPath } from './layout.js';
import { rebuildArtifact } from './maintenance.js';
import { compareVersions, isSnapshot } from './version.js';

const DAY_MS = 24 * 3600 * 1000;
const FORMAT = 'maven2';

/** The hosted maven2 repositories a task covers: the one named, or all of them. */
async function hostedRepositories(app: Stowage, name: unknown): Promise<Repository[]> {
  if (name !== undefined && name !== '') {
    const repo = await app.repositories.require(String(name));
    if (repo.format.name !== FORMAT || repo.type !== 'hosted') throw new AppError('BAD_REQUEST', `repositoryName: '${repo.name}' is not a hosted maven2 repository`);
    return [repo];
  }
  return (await app.repositories.list()).filter((r) => r.format.name === FORMAT && r.type === 'hosted');
}

async function allComponents(app: Stowage, repo: Repository): Promise<ComponentRow[]> {
  const out: ComponentRow[] = [];
  let token: string | null = null;
  do {
    const page = await app.content.listComponents({ repositoryIds: [repo.id] }, token, 500);
    out.push(...page.items);
    token = page.continuationToken;
  } while (token);
  return out;
}

/** When a snapshot build was made: its timestamp (`1.0-20261201.120000-3`), else when it was stored. */
export function builtAt(c: Pick<ComponentRow, 'version' | 'created_at'>): number {
  const m = /-(\d{4})(\d{2})(\d{2})\.(\d{2})(\d{2})(\d{2})-\d+$/.exec(c.version);
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : c.created_at;
}

function baseVersionOf(c: ComponentRow): string {
  const attr = (c.attributes?.maven2 as { baseVersion?: unknown } | undefined)?.baseVersion;
  return typeof attr === 'string' ? attr : c.version.replace(/-\d{8}\.\d{6}-\d+$/, '-SNAPSHOT');
}

export interface SnapshotRules {
  minimumRetained: number;
  snapshotRetentionDays: number;
  removeIfReleased: boolean;
  gracePeriodInDays: number;
}

/**
 * The snapshot builds the rules remove (pure): per groupId, artifactId and baseVersion the newest
 * `minimumRetained` are kept, unless the release exists (`removeIfReleased`, once the release is
 * older than the grace period); of the others those built more than `snapshotRetentionDays` ago go.
 */
export function snapshotsToDelete(components: ComponentRow[], rules: SnapshotRules, now: number): ComponentRow[] {
  const releases = new Map<string, ComponentRow>();
  const builds = new Map<string, ComponentRow[]>();
  for (const c of components) {
    if (!isSnapshot(c.version)) {
      releases.set(`${c.namespace}:${c.name}:${c.version}`, c);
      continue;
    }
    const key = `${c.namespace}:${c.name}:${baseVersionOf(c)}`;
    const list = builds.get(key) ?? [];
    list.push(c);
    builds.set(key, list);
  }
  const out: ComponentRow[] = [];
  for (const [key, list] of builds) {
    const release = releases.get(key.replace(/-SNAPSHOT$/, ''));
    if (rules.removeIfReleased && release && now - release.created_at >= rules.gracePeriodInDays * DAY_MS) {
      out.push(...list);
      continue;
    }
    const newestFirst = [...list].sort((a, b) => compareVersions(b.version, a.version) || builtAt(b) - builtAt(a));
    for (const c of newestFirst.slice(rules.minimumRetained)) if (now - builtAt(c) >= rules.snapshotRetentionDays * DAY_MS) out.push(c);
  }
  return out;
}

const number = (v: unknown, fallback: number) => (v === undefined || v === '' ? fallback : Number(v));

const deleteSnapshots: TaskType = {
  id: 'repository.maven.remove-snapshots',
  name: 'Maven - Delete SNAPSHOT',
  properties: [
    { id: 'repositoryName', label: 'Repository', type: 'repository', help: 'A hosted maven2 repository (all of them when empty)' },
    { id: 'minimumRetained', label: 'Minimum snapshot count', type: 'number', min: 0, default: 1, help: 'Keep at least this many builds of each snapshot version' },
    { id: 'snapshotRetentionDays', label: 'Snapshot retention (days)', type: 'number', min: 0, default: 30, help: 'Delete builds older than this, beyond the minimum count' },
    { id: 'removeIfReleased', label: 'Remove if released', type: 'boolean', default: false, help: 'Delete every build of a snapshot version whose release exists' },
    { id: 'gracePeriodInDays', label: 'Grace period after release (days)', type: 'number', min: 0, default: 0, help: 'With removeIfReleased: wait this long after the release' },
  ],
  async run(app, attributes, ctx?: TaskRunContext) {
    const rules: SnapshotRules = {
      minimumRetained: number(attributes.minimumRetained, 1),
      snapshotRetentionDays: number(attributes.snapshotRetentionDays, 30),
      removeIfReleased: attributes.removeIfReleased === true || attributes.removeIfReleased === 'true',
      gracePeriodInDays: number(attributes.gracePeriodInDays, 0),
    };
    let deleted = 0;
    const repos = await hostedRepositories(app, attributes.repositoryName);
    for (const repo of repos) {
      const doomed = snapshotsToDelete(await allComponents(app, repo), rules, Date.now());
      ctx?.log(`${repo.name}: deleting ${doomed.length} snapshot builds`);
      for (let i = 0; i < doomed.length; i += 100) {
        if (ctx?.signal?.aborted) throw new AppError('CONFLICT', 'Stopped');
        const batch = doomed.slice(i, i + 100);
        await repo.change({ source: 'cleanup' }, (c) => {
          for (const x of batch) c.deleteComponent(x.id);
        });
        deleted += batch.length;
      }
    }
    return `Deleted ${deleted} snapshot builds in ${repos.length} maven2 repositories`;
  },
};

const rebuildMetadata: TaskType = {
  id: 'repository.maven.rebuild-metadata',
  name: 'Maven - Rebuild metadata',
  properties: [
    { id: 'repositoryName', label: 'Repository', type: 'repository', help: 'A hosted maven2 repository (all of them when empty)' },
    { id: 'groupId', label: 'Group Id', type: 'string', help: 'Only this groupId (and the groups below it)' },
    { id: 'artifactId', label: 'Artifact Id', type: 'string', help: 'Only this artifactId' },
    { id: 'baseVersion', label: 'Base version', type: 'string', help: 'Only this snapshot version’s metadata (and its artifact’s)' },
  ],
  async run(app, attributes, ctx?: TaskRunContext) {
    const groupId = attributes.groupId ? String(attributes.groupId) : undefined;
    const artifactId = attributes.artifactId ? String(attributes.artifactId) : undefined;
    const baseVersion = attributes.baseVersion ? String(attributes.baseVersion) : undefined;
    let written = 0;
    let artifacts = 0;
    const repos = await hostedRepositories(app, attributes.repositoryName);
    for (const repo of repos) {
      const found = new Map<string, { groupId: string; artifactId: string }>();
      const prefix = groupId ? groupId.replace(/\./g, '/') + '/' : undefined;
      for (const a of await app.content.findAssets(repo.id, { pathPrefix: prefix })) {
        const p = parseMavenPath(a.path);
        if (!p || p.kind !== 'artifact') continue;
        if (artifactId && p.coords.artifactId !== artifactId) continue;
        found.set(`${p.coords.groupId}:${p.coords.artifactId}`, { groupId: p.coords.groupId, artifactId: p.coords.artifactId });
      }
      for (const f of found.values()) {
        if (ctx?.signal?.aborted) throw new AppError('CONFLICT', 'Stopped');
        written += (await rebuildArtifact(app, repo, f.groupId, f.artifactId, baseVersion ? new Set([baseVersion]) : null)).length;
        artifacts++;
      }
    }
    return `Rebuilt the metadata of ${artifacts} artifacts in ${repos.length} maven2 repositories (${written} documents rewritten)`;
  },
};

export const mavenTasks: TaskType[] = [deleteSnapshots, rebuildMetadata];
