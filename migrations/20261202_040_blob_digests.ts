import type { Knex } from 'knex';

/**
 * Digests per format: each format declares the digests its assets need and ingest computes only
 * those, so a blob has sha256 always and the others when some format needed them (or they were
 * computed later). `sha1` and `md5` become nullable; `sha512` (Maven, npm's integrity) and
 * `blake2b256` (PyPI) are new. Rows stored before keep their sha1 and md5.
 *
 * SQLite changes NOT NULL only by rebuilding the table (knex's `alter()` does: new table, copy,
 * drop, rename). `assets` references `blobs`: with foreign keys on, dropping the old table would
 * fail (or cascade), and the pragma cannot change inside a transaction. So this migration runs
 * outside knex's migration transaction and opens its own with foreign keys off, checks them before
 * it commits (`foreign_key_check`), and the pragma comes back on after.
 */
export const config = { transaction: false };

async function widen(trx: Knex.Transaction): Promise<void> {
  await trx.schema.alterTable('blobs', (t) => {
    t.string('sha1', 40).nullable().alter();
    t.string('md5', 32).nullable().alter();
  });
  await trx.schema.alterTable('blobs', (t) => {
    t.string('sha512', 128).nullable();
    t.string('blake2b256', 64).nullable();
    t.index(['store_id', 'sha512']);
  });
}

export async function up(knex: Knex): Promise<void> {
  if (knex.client.config.client !== 'better-sqlite3' && knex.client.config.client !== 'sqlite3') {
    await knex.transaction(widen);
    return;
  }
  await knex.transaction(
    async (trx) => {
      await widen(trx);
      const broken = (await trx.raw('PRAGMA foreign_key_check')) as unknown[];
      if (broken.length > 0) throw new Error(`Rebuilding blobs broke ${broken.length} foreign key reference(s): ${JSON.stringify(broken.slice(0, 5))}`);
    },
    { enforceForeignCheck: false } as Knex.TransactionConfig,
  );
}

/** The new columns go; sha1 and md5 stay nullable (blobs stored since may lack them). */
export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('blobs', (t) => {
    t.dropIndex(['store_id', 'sha512']);
  });
  await knex.schema.alterTable('blobs', (t) => {
    t.dropColumn('blake2b256');
    t.dropColumn('sha512');
  });
}
