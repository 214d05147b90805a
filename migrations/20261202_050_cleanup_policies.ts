import type { Knex } from 'knex';

/**
 * Cleanup policies (Nexus's shape: name, format, notes, criteria), the repositories that use them
 * (several per repository, in order), and the journal of a cleanup run: the components its
 * selection named, written before anything is deleted, so a run cut short by a crash is finished
 * by the next one without deleting anything the selection did not name.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('cleanup_policies', (t) => {
    t.increments('id').primary();
    t.string('name', 255).notNullable().unique();
    /** A format name, or `*` for every format. */
    t.string('format', 64).notNullable();
    t.text('notes').notNullable().defaultTo('');
    /** { lastBlobUpdated?, lastDownloaded?, releaseType?, regex?, retain?, sortBy? } */
    t.text('criteria').notNullable().defaultTo('{}');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('repository_cleanup_policies', (t) => {
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    // RESTRICT: a policy in use cannot go.
    t.integer('policy_id').notNullable().references('id').inTable('cleanup_policies').onDelete('RESTRICT');
    t.integer('position').notNullable();
    t.primary(['repository_id', 'policy_id']);
    t.index(['policy_id']);
  });
  await knex.schema.createTable('cleanup_journal', (t) => {
    t.bigIncrements('id').primary();
    t.integer('repository_id').notNullable().references('id').inTable('repositories').onDelete('CASCADE');
    /** No foreign key: the component goes, its journal row goes after it. */
    t.bigInteger('component_id').notNullable();
    /** The component's newest asset change when selected: a component changed since is not deleted. */
    t.bigInteger('last_updated').notNullable();
    t.bigInteger('created_at').notNullable();
    t.unique(['repository_id', 'component_id']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('cleanup_journal');
  await knex.schema.dropTable('repository_cleanup_policies');
  await knex.schema.dropTable('cleanup_policies');
}
