import type { Knex } from 'knex';

/**
 * Docker images become components, as in Nexus: one component per tag (name = image name,
 * version = tag) owning the asset `v2/<name>/manifests/<tag>`, which references the same blob as
 * the manifest by digest. New pushes write them; this gives them to the tags stored before.
 *
 * Plain knex on the tables as they are at this point (a migration never changes once released,
 * so it does not use the application's services). Referrer index rows (scope `<name>@<digest>`)
 * are not tags. A tag whose manifest is missing gets nothing (it cannot be pulled either).
 */
const BATCH = 500;

export async function up(knex: Knex): Promise<void> {
  const repos = await knex('repositories').where({ format: 'docker' }).whereIn('type', ['hosted', 'proxy']).select('id');
  for (const { id: repositoryId } of repos) {
    let after = 0;
    for (;;) {
      const tags = await knex('tags')
        .where({ repository_id: repositoryId })
        .andWhere('id', '>', after)
        .orderBy('id')
        .limit(BATCH)
        .select('id', 'scope', 'name', 'target', 'updated_at');
      if (tags.length === 0) break;
      after = Number(tags[tags.length - 1].id);
      for (const t of tags) {
        const name = String(t.scope);
        if (name.includes('@')) continue;
        const digest = String(t.target);
        const manifest = await knex('assets')
          .where({ repository_id: repositoryId, path: `v2/${name}/manifests/${digest}` })
          .first('blob_id', 'content_type', 'attributes');
        if (!manifest) continue;
        const at = Number(t.updated_at);
        const key = { repository_id: repositoryId, namespace: '', name, version: String(t.name) };
        let component = await knex('components').where(key).first('id');
        if (!component) {
          await knex('components').insert({ ...key, attributes: '{}', created_at: at, updated_at: at });
          component = await knex('components').where(key).first('id');
        }
        const path = `v2/${name}/manifests/${String(t.name)}`;
        const mediaType = mediaTypeOf(manifest.attributes) ?? String(manifest.content_type);
        const existing = await knex('assets').where({ repository_id: repositoryId, path }).first('id');
        if (existing) {
          // A proxy's cached tag manifest: it only gains its component.
          await knex('assets').where({ id: existing.id }).update({ component_id: component.id });
        } else {
          await knex('assets').insert({
            repository_id: repositoryId,
            path,
            component_id: component.id,
            blob_id: manifest.blob_id,
            content_type: String(manifest.content_type),
            kind: 'content',
            attributes: JSON.stringify({ digest, mediaType }),
            created_at: at,
            updated_at: at,
            last_downloaded: null,
            last_verified: null,
          });
        }
      }
    }
  }
}

function mediaTypeOf(attributes: unknown): string | undefined {
  try {
    const a = typeof attributes === 'string' ? (JSON.parse(attributes) as Record<string, unknown>) : (attributes as Record<string, unknown>);
    return typeof a?.mediaType === 'string' ? a.mediaType : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Back to tags without components: the components go, the tags stay. A hosted repository's tag
 * assets go too (derived from the tags); a proxy's are its cached upstream manifests and stay.
 */
export async function down(knex: Knex): Promise<void> {
  const repos = await knex('repositories').where({ format: 'docker' }).select('id', 'type');
  if (repos.length === 0) return;
  const ids = repos.map((r) => r.id);
  const hosted = repos.filter((r) => r.type === 'hosted').map((r) => r.id);
  if (hosted.length > 0) await knex('assets').whereIn('repository_id', hosted).whereNotNull('component_id').delete();
  await knex('assets').whereIn('repository_id', ids).whereNotNull('component_id').update({ component_id: null });
  await knex('components').whereIn('repository_id', ids).delete();
}
