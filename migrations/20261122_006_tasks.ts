import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tasks', (t) => {
    t.increments('id').primary();
    t.string('task_id', 64).notNullable().unique();
    t.string('name', 255).notNullable();
    t.string('type', 128).notNullable();
    t.boolean('enabled').notNullable().defaultTo(true);
    /** Seconds between runs; 0 = manual. */
    t.integer('interval_seconds').notNullable().defaultTo(0);
    t.text('attributes').notNullable().defaultTo('{}');
    t.string('current_state', 32).notNullable().defaultTo('WAITING');
    t.string('last_result', 32).nullable();
    t.text('last_message').nullable();
    t.bigInteger('last_run_at').nullable();
    t.bigInteger('next_run_at').nullable();
    /** Lease so a task runs on exactly one node: the node id and when its lease ends. */
    t.string('lease_owner', 64).nullable();
    t.bigInteger('lease_until').nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('tasks');
}
