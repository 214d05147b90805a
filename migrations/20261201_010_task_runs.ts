import type { Knex } from 'knex';

/** Every run of a task (kept: the newest few per task) and its log lines (capped per run). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('task_runs', (t) => {
    t.increments('id').primary();
    t.integer('task_id').notNullable().references('id').inTable('tasks').onDelete('CASCADE');
    /** The node that ran it. */
    t.string('node', 64).notNullable();
    t.bigInteger('started').notNullable();
    t.bigInteger('ended').nullable();
    /** OK, FAILED, CANCELED, INTERRUPTED; null while it runs. */
    t.string('result', 16).nullable();
    t.text('message').nullable();
    t.bigInteger('processed').notNullable().defaultTo(0);
    t.bigInteger('total').nullable();
    t.index(['task_id', 'id']);
  });
  await knex.schema.createTable('task_run_logs', (t) => {
    t.integer('run_id').notNullable().references('id').inTable('task_runs').onDelete('CASCADE');
    t.integer('seq').notNullable();
    t.bigInteger('time').notNullable();
    t.text('line').notNullable();
    t.primary(['run_id', 'seq']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('task_run_logs');
  await knex.schema.dropTable('task_runs');
}
