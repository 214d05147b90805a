import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('blob_stores', (t) => {
    t.increments('id').primary();
    t.string('name', 200).notNullable().unique();
    t.string('type', 32).notNullable();
    /** Driver settings (path; or bucket, region, prefix, endpoint, keys, path style). */
    t.text('attributes').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
  });
  // A blob row is one stored object: content-addressed by (store, sha256); `storage_key` is the
  // driver key, unique per row and never reused, so GC of one row can never delete bytes that a
  // newer row of the same digest points to.
  await knex.schema.createTable('blobs', (t) => {
    t.bigIncrements('id').primary();
    t.integer('store_id').notNullable().references('id').inTable('blob_stores').onDelete('RESTRICT');
    t.string('sha256', 64).notNullable();
    t.string('sha1', 40).notNullable();
    t.string('md5', 32).notNullable();
    t.bigInteger('size').notNullable();
    t.string('storage_key', 200).notNullable();
    t.bigInteger('created_at').notNullable();
    /** Last time an upload reused or created this blob: GC keeps blobs touched within its grace period. */
    t.bigInteger('touched_at').notNullable();
    t.unique(['store_id', 'sha256']);
    t.unique(['store_id', 'storage_key']);
    t.index(['store_id', 'sha1']);
    t.index(['store_id', 'md5']);
    t.index(['touched_at']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('blobs');
  await knex.schema.dropTable('blob_stores');
}
