import type { Knex } from 'knex';

/** Proxy state lives in the database so every node sees the same auto-block and negative cache. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('proxy_status', (t) => {
    t.integer('repository_id').primary().references('id').inTable('repositories').onDelete('CASCADE');
    t.integer('failures').notNullable().defaultTo(0);
    t.bigInteger('blocked_until').nullable();
    t.text('last_error').nullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('negative_cache', (t) => {
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    t.string('path', 1024).notNullable();
    t.integer('status').notNullable();
    t.bigInteger('expires_at').notNullable();
    t.primary(['repository_id', 'path']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('negative_cache');
  await knex.schema.dropTable('proxy_status');
}
