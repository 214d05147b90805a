import { writeFile, mkdir, chmod } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config/config.js';
import { migrate, openDb, withStartupLock, type Db } from './db/db.js';
import { BlobStores } from './blob/blob-stores.js';
import { BlobService } from './blob/blob-service.js';
import { ContentService } from './content/content-service.js';
import { RepositoryManager } from './repository/repository-manager.js';
import type { FormatPlugin } from './repository/format.js';
import { Security } from './security/security.js';
import { PrivilegeAuthorizer, type Authorizer } from './security/authorizer.js';
import { randomPassword } from './security/passwords.js';
import { createLogger, type Logger } from './log.js';
import { TaskService } from './tasks/task-service.js';
import { ProxyService } from './proxy/proxy-service.js';
import { Secrets } from './security/secrets.js';
import { Audit } from './security/audit.js';
import { API_TOKEN_KIND, ScopedAuthorizer, TokenService, USER_TOKEN_REALM, tokenRealm } from './security/tokens.js';
import { LoginThrottle } from './security/throttle.js';
import { LdapRealm } from './security/ldap/realm.js';
import { ScopedTokens, scopedTokenRealm } from './security/scoped-tokens.js';
import { ListenerManager } from './http/listeners.js';
import { configureSendfile } from './http/sendfile-native.js';
import { CleanupService } from './cleanup/cleanup-service.js';

/** The application: every core service, created once per process and passed to listeners and formats. */
export class Stowage {
  readonly log: Logger;
  readonly blobStores: BlobStores;
  readonly blobs: BlobService;
  readonly content: ContentService;
  readonly repositories: RepositoryManager;
  readonly security: Security;
  readonly authorizer: Authorizer;
  readonly formats: Map<string, FormatPlugin>;
  readonly tasks: TaskService;
  readonly proxy: ProxyService;
  readonly secrets: Secrets;
  readonly audit: Audit;
  /** User tokens: the engine of the token realms (API tokens; npm and docker tokens later). */
  readonly tokens: TokenService;
  readonly loginThrottle: LoginThrottle;
  /** Short-lived signed bearer tokens restricted to content grants (docker's token flow). */
  readonly scopedTokens: ScopedTokens;
  /** Dedicated per-repository listeners (docker.httpPort); opened once started by the server. */
  readonly listeners: ListenerManager;
  /** Cleanup policies, previews and runs. */
  readonly cleanup: CleanupService;

  private constructor(
    readonly config: Config,
    readonly db: Db,
    formats: readonly FormatPlugin[],
  ) {
    this.log = createLogger(config.log.level);
    this.secrets = new Secrets(config.dataDir, config.secretKey);
    this.audit = new Audit(db, config.dataDir, (e) => this.log.error('Audit record failed', e));
    this.formats = new Map(formats.map((f) => [f.name, f]));
    this.blobStores = new BlobStores(db, config.dataDir, this.secrets);
    this.blobs = new BlobService(db, this.blobStores, { dataDir: config.dataDir, minFreeBytes: config.blobs.minFreeBytes, reserveBytes: config.blobs.reserveBytes });
    this.content = new ContentService(db);
    this.repositories = new RepositoryManager(db, this.formats, this);
    this.security = new Security(db, this.content, config.anonymousAccess, {
      formatNames: () => [...this.formats.keys()],
      repositoryList: async () => (await this.repositories.list()).map((r) => ({ name: r.name, format: r.format.name })),
    });
    // Token scopes wrap whichever policy is in use: a read-only token never writes.
    this.authorizer = new ScopedAuthorizer(new PrivilegeAuthorizer(this.security.store));
    this.tokens = new TokenService(db, (e) => this.log.warn('Token last-use update failed', e));
    this.tokens.registerSource('default', (userId) => this.security.users.principal(userId));
    this.security.register(tokenRealm(this.tokens, { id: USER_TOKEN_REALM, name: 'User Token Realm', kinds: [API_TOKEN_KIND] }));
    this.scopedTokens = new ScopedTokens(
      this.secrets.deriveKey('scoped-bearer-token'),
      (userId, source) => this.tokens.lookup(userId, source),
      () => this.security.anonymousPrincipal(),
      (tokenId) => this.tokens.isValid(tokenId),
    );
    for (const format of this.formats.values()) {
      for (const r of format.tokenRealms ?? []) this.security.register(scopedTokenRealm(this.scopedTokens, { ...r, kind: format.name }));
      for (const r of format.userTokenRealms ?? []) this.security.register(tokenRealm(this.tokens, { ...r, kinds: [format.name] }));
    }
    LdapRealm.install(this);
    this.listeners = new ListenerManager(this);
    this.repositories.validators.push((cfg) => this.listeners.check(cfg));
    this.repositories.changeListeners.push(() => this.listeners.sync());
    this.loginThrottle = new LoginThrottle();
    this.tasks = new TaskService(db, this);
    for (const format of this.formats.values()) for (const t of format.tasks ?? []) this.tasks.register(t);
    this.cleanup = new CleanupService(this);
    this.cleanup.install();
    this.proxy = new ProxyService(db, this);
  }

  /**
   * Opens the database, runs migrations, creates the embedded defaults (blob store, admin).
   * `formats` comes from the composition root (main.ts): the core knows no format by name.
   */
  static async open(config: Config, formats: readonly FormatPlugin[]): Promise<Stowage> {
    await mkdir(config.dataDir, { recursive: true });
    const db = openDb(config.db, config.dataDir);
    const app = new Stowage(config, db, formats);
    configureSendfile(config.http.sendfile);
    try {
      await withStartupLock(db, async () => {
        await migrate(db);
        await app.blobStores.ensureDefault();
        await app.ensureAdmin();
        await app.security.ensureDefaults();
        await app.tasks.ensureDefaults();
      });
    } catch (e) {
      await db.destroy();
      throw e;
    }
    app.blobs.start();
    return app;
  }

  private async ensureAdmin(): Promise<void> {
    if (await this.security.users.get('admin')) return;
    const password = this.config.adminPassword ?? randomPassword();
    try {
      await this.security.users.create({ userId: 'admin', password, firstName: 'Administrator', lastName: 'User', roles: ['nx-admin'] });
    } catch (e) {
      if ((e as { code?: string }).code === 'CONFLICT') return; // Another node created it first.
      throw e;
    }
    if (!this.config.adminPassword) {
      const file = path.join(this.config.dataDir, 'admin.password');
      await writeFile(file, password + '\n', { mode: 0o600 });
      await chmod(file, 0o600);
      this.log.info(`Initial admin password written to ${file}`);
    }
  }

  /**
   * External base URL: configured, or derived from the request. Koa's protocol and host read
   * X-Forwarded-Proto/Host only when the listener trusts a proxy (http.trustProxy): otherwise any
   * client could point generated links (docker's token realm, npm tarballs) at a host of its choice.
   */
  baseUrl(ctx: { protocol: string; host: string }): string {
    if (this.config.baseUrl) return this.config.baseUrl;
    return `${ctx.protocol}://${ctx.host}`;
  }

  async close(): Promise<void> {
    await this.listeners.close();
    this.tasks.stop();
    await this.content.flushDownloads().catch((e) => this.log.warn('Recording downloads failed', e));
    await this.proxy.close();
    await this.blobStores.close();
    this.blobs.close();
    await this.db.destroy();
  }
}
