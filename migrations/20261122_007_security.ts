import type { Knex } from 'knex';

/** The Nexus security model: roles, privileges, content selectors, tokens, LDAP servers, audit. */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('roles', (t) => {
    t.increments('id').primary();
    t.string('role_id', 255).notNullable().unique();
    t.string('name', 255).notNullable();
    t.text('description').notNullable().defaultTo('');
    /** JSON arrays of privilege names and nested role ids. */
    t.text('privileges').notNullable().defaultTo('[]');
    t.text('roles').notNullable().defaultTo('[]');
    t.string('source', 64).notNullable().defaultTo('default');
    t.boolean('read_only').notNullable().defaultTo(false);
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('privileges', (t) => {
    t.increments('id').primary();
    t.string('name', 255).notNullable().unique();
    /** application | repository-view | repository-admin | repository-content-selector | wildcard | script */
    t.string('type', 64).notNullable();
    t.text('description').notNullable().defaultTo('');
    /** Type-specific fields: domain, actions, format, repository, contentSelector, pattern. */
    t.text('properties').notNullable().defaultTo('{}');
    t.boolean('read_only').notNullable().defaultTo(false);
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('content_selectors', (t) => {
    t.increments('id').primary();
    t.string('name', 255).notNullable().unique();
    t.string('type', 32).notNullable().defaultTo('csel');
    t.text('description').notNullable().defaultTo('');
    t.text('expression').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  // Local roles given to users of other realms (LDAP): keyed by (user id, source) as in Nexus.
  await knex.schema.createTable('user_role_mappings', (t) => {
    t.string('user_id', 255).notNullable();
    t.string('source', 64).notNullable();
    t.text('roles').notNullable().defaultTo('[]');
    t.bigInteger('updated_at').notNullable();
    t.primary(['user_id', 'source']);
  });
  await knex.schema.createTable('user_tokens', (t) => {
    t.increments('id').primary();
    /** Public identifier shown in listings; the secret itself is stored only as a sha256. */
    t.string('token_id', 64).notNullable().unique();
    t.string('user_id', 255).notNullable();
    /** Realm the user belongs to (default, ldap…), so tokens of external users resolve too. */
    t.string('user_source', 64).notNullable().defaultTo('default');
    t.string('token_hash', 64).notNullable().unique();
    t.string('name', 255).notNullable().defaultTo('');
    /** read | write */
    t.string('scope', 16).notNullable().defaultTo('write');
    /** Which client issued it: api, npm, docker… */
    t.string('kind', 32).notNullable().defaultTo('api');
    t.bigInteger('created_at').notNullable();
    t.bigInteger('expires_at').nullable();
    t.bigInteger('last_used_at').nullable();
    t.index(['user_id']);
  });
  await knex.schema.createTable('ldap_servers', (t) => {
    t.increments('id').primary();
    t.string('name', 255).notNullable().unique();
    t.integer('position').notNullable();
    /** Nexus LdapServerXO fields (connection, user and group mapping); secrets encrypted. */
    t.text('config').notNullable();
    t.bigInteger('updated_at').notNullable();
  });
  await knex.schema.createTable('audit_events', (t) => {
    t.bigIncrements('id').primary();
    t.bigInteger('timestamp').notNullable();
    /** e.g. security.user, repository.repository, repository.asset */
    t.string('domain', 128).notNullable();
    /** created | updated | deleted | … */
    t.string('type', 64).notNullable();
    t.string('context', 1024).notNullable().defaultTo('');
    t.string('initiator', 255).notNullable().defaultTo('');
    t.string('remote_address', 128).notNullable().defaultTo('');
    t.text('attributes').notNullable().defaultTo('{}');
    t.index(['timestamp']);
    t.index(['domain', 'timestamp']);
  });
}

export async function down(knex: Knex): Promise<void> {
  for (const t of ['audit_events', 'ldap_servers', 'user_tokens', 'user_role_mappings', 'content_selectors', 'privileges', 'roles']) await knex.schema.dropTable(t);
}
