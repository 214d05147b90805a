import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('repositories', (t) => {
    t.increments('id').primary();
    t.string('name', 200).notNullable().unique();
    t.string('format', 32).notNullable();
    t.string('type', 16).notNullable(); // hosted | proxy | group
    t.integer('blob_store_id').notNullable().references('id').inTable('blob_stores').onDelete('RESTRICT');
    t.boolean('online').notNullable().defaultTo(true);
    /** The Nexus-shaped configuration (storage, proxy, negativeCache, httpClient, group, format sections). */
    t.text('attributes').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('group_members', (t) => {
    t.integer('group_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    t.integer('member_id').notNullable().references('id').inTable('repositories').onDelete('RESTRICT');
    t.integer('position').notNullable();
    t.primary(['group_id', 'member_id']);
    t.index(['member_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('group_members');
  await knex.schema.dropTable('repositories');
}
