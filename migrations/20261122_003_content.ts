import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('components', (t) => {
    t.bigIncrements('id').primary();
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    t.string('namespace', 255).notNullable().defaultTo('');
    t.string('name', 255).notNullable();
    t.string('version', 255).notNullable().defaultTo('');
    t.text('attributes').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['repository_id', 'namespace', 'name', 'version']);
    t.index(['name']);
  });
  await knex.schema.createTable('assets', (t) => {
    t.bigIncrements('id').primary();
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    t.string('path', 1024).notNullable();
    t.bigInteger('component_id').nullable().references('id').inTable('components').onDelete('SET NULL');
    // RESTRICT: a blob can only go once nothing points at it.
    t.bigInteger('blob_id').notNullable().references('id').inTable('blobs').onDelete('RESTRICT');
    t.string('content_type', 255).notNullable();
    /** content | metadata: metadata is revalidated by proxies after metadataMaxAge. */
    t.string('kind', 16).notNullable().defaultTo('content');
    t.text('attributes').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.bigInteger('last_downloaded').nullable();
    /** Proxy: when the cached copy was last fetched or revalidated upstream. */
    t.bigInteger('last_verified').nullable();
    t.unique(['repository_id', 'path']);
    t.index(['component_id']);
    t.index(['blob_id']);
  });
  await knex.schema.createTable('tags', (t) => {
    t.bigIncrements('id').primary();
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    /** What the tag belongs to inside the repository (docker image name, npm package name). */
    t.string('scope', 512).notNullable();
    t.string('name', 255).notNullable();
    t.string('target', 512).notNullable();
    t.bigInteger('updated_at').notNullable();
    t.unique(['repository_id', 'scope', 'name']);
  });
  await knex.schema.createTable('properties', (t) => {
    t.string('scope', 255).notNullable();
    t.string('key', 255).notNullable();
    t.text('value').notNullable();
    t.bigInteger('updated_at').notNullable();
    t.primary(['scope', 'key']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('properties');
  await knex.schema.dropTable('tags');
  await knex.schema.dropTable('assets');
  await knex.schema.dropTable('components');
}
