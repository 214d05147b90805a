import type { Knex } from 'knex';

/** Tasks get a schedule (FrequencyXO-like JSON), the run under way and a stop request another node can see. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tasks', (t) => {
    /** JSON; null = the legacy `interval_seconds`. */
    t.text('schedule').nullable();
    /** The task_runs row of the run holding the lease. */
    t.integer('run_id').nullable();
    t.boolean('stop_requested').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('tasks', (t) => {
    t.dropColumn('schedule');
    t.dropColumn('run_id');
    t.dropColumn('stop_requested');
  });
}
