import type { Knex } from 'knex';
import * as m001 from './20261122_001_blob_stores_and_blobs.js';
import * as m002 from './20261122_002_repositories.js';
import * as m003 from './20261122_003_content.js';
import * as m004 from './20261122_004_users.js';
import * as m005 from './20261122_005_proxy_state.js';
import * as m006 from './20261122_006_tasks.js';
import * as m007 from './20261122_007_security.js';
import * as m010 from './20261201_010_task_runs.js';
import * as m011 from './20261201_011_task_schedules.js';
import * as m020 from './20261201_020_docker_components.js';
import * as m030 from './20261201_030_asset_uploader.js';
import * as m040 from './20261202_040_blob_digests.js';
import * as m050 from './20261202_050_cleanup_policies.js';

interface Migration {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
  /** `{ transaction: false }`: the migration opens its own transactions (a SQLite table rebuild). */
  config?: { transaction?: boolean };
}

/** The explicit, ordered list of migrations. Each file is one change and never edited once released. */
const migrations: Array<[string, Migration]> = [
  ['20261122_001_blob_stores_and_blobs', m001],
  ['20261122_002_repositories', m002],
  ['20261122_003_content', m003],
  ['20261122_004_users', m004],
  ['20261122_005_proxy_state', m005],
  ['20261122_006_tasks', m006],
  ['20261122_007_security', m007],
  ['20261201_010_task_runs', m010],
  ['20261201_011_task_schedules', m011],
  ['20261201_020_docker_components', m020],
  ['20261201_030_asset_uploader', m030],
  ['20261202_040_blob_digests', m040],
  ['20261202_050_cleanup_policies', m050],
];

export const migrationSource: Knex.MigrationSource<[string, Migration]> = {
  getMigrations: async () => migrations,
  getMigrationName: (m) => m[0],
  getMigration: async (m) => m[1],
};
