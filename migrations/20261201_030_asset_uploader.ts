import type { Knex } from 'knex';

/** Who uploaded an asset and from where (Nexus AssetXO `uploader`, `uploaderIp`); null for content a proxy fetched or the server generated. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('assets', (t) => {
    t.string('uploader', 255).nullable();
    /** Up to an IPv6 address with a zone. */
    t.string('uploader_ip', 64).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('assets', (t) => {
    t.dropColumn('uploader_ip');
    t.dropColumn('uploader');
  });
}
