import { isIP } from 'node:net';
import type { Client, Entry } from 'ldapts';
import type { LdapServerConfig } from './config.js';
import { ldapts, serverUrl } from './config.js';
import { escapeFilterValue, firstRdnValue, formatMember, underBase } from './escape.js';
import { passwordMatches } from './password-attribute.js';

/** A user entry as the mapping reads it. */
export interface LdapUser {
  dn: string;
  userId: string;
  realName: string;
  email: string;
  /** Values of userMemberOfAttribute (dynamic groups). */
  memberOf: string[];
  /** Values of userPasswordAttribute when the account may read them (compare mode). */
  passwords: Buffer[];
}

/**
 * The server failed us (unreachable, timed out, refused the service account, rejected a search):
 * the realm counts an incident and moves on to the next server. Not for "no such user" or "wrong
 * password", which are answers.
 */
export class LdapServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LdapServerError';
  }
}

function describe(e: unknown): string {
  if (e instanceof ldapts().ResultCodeError) {
    // ldapts names the result by class (InvalidCredentialsError); its message is mostly the bare code.
    const name = e.constructor.name.replace(/Error$/, '').replace(/([a-z])([A-Z])/g, '$1 $2');
    const said = e.message.replace(/\s*Code:\s*0x[0-9a-f]+\s*$/i, '').trim();
    return `${name.charAt(0) + name.slice(1).toLowerCase()} (LDAP result ${e.code})${said ? `: ${said}` : ''}`;
  }
  const err = e as { code?: string; message?: string };
  return err?.message || err?.code || String(e);
}

function values(entry: Entry, attribute: string): Array<string | Buffer> {
  const key = Object.keys(entry).find((k) => k.toLowerCase() === attribute.toLowerCase());
  if (!key) return [];
  const v = entry[key];
  return (Array.isArray(v) ? v : [v]) as Array<string | Buffer>;
}

const text = (v: string | Buffer) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);

/**
 * One connection to one server, bound as the service account (or anonymous), for the few
 * operations a login needs. Every operation is bounded by the server's connection timeout, and
 * the whole session by a deadline of the same length, so a server that accepts connections and
 * never answers costs one timeout, never more.
 */
export class LdapSession {
  private constructor(
    private readonly client: Client,
    readonly cfg: LdapServerConfig,
  ) {}

  /**
   * Runs `work` on a fresh session and closes it. Errors other than the answers `work` returns
   * become LdapServerError with the server's message.
   */
  static async run<T>(cfg: LdapServerConfig, bindPassword: string, work: (s: LdapSession) => Promise<T>): Promise<T> {
    const ms = cfg.connectionTimeoutSeconds * 1000;
    const url = serverUrl(cfg);
    const client = new (ldapts().Client)({
      url,
      timeout: ms,
      connectTimeout: ms,
      tlsOptions: cfg.protocol === 'ldaps' ? { servername: isIP(cfg.host) ? undefined : cfg.host, minVersion: 'TLSv1.2' } : undefined,
    });
    const session = new LdapSession(client, cfg);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new LdapServerError(`${url}: no answer within ${cfg.connectionTimeoutSeconds} s`)), ms);
    });
    try {
      return await Promise.race([
        (async () => {
          if (cfg.authScheme === 'SIMPLE') {
            try {
              await client.bind(cfg.authUsername, bindPassword);
            } catch (e) {
              throw new LdapServerError(`${url}: bind as '${cfg.authUsername}' failed: ${describe(e)}`, { cause: e });
            }
          }
          return await work(session);
        })(),
        deadline,
      ]);
    } catch (e) {
      if (e instanceof LdapServerError) throw e;
      throw new LdapServerError(`${url}: ${describe(e)}`, { cause: e });
    } finally {
      clearTimeout(timer);
      // Closing never waits on the server: unbind writes and destroys the socket.
      client.unbind().catch(() => undefined);
    }
  }

  private get userBase(): string {
    return underBase(this.cfg.userBaseDn, this.cfg.searchBase);
  }

  private userFilter(idAssertion: string): string {
    const c = this.cfg;
    return `(&(objectClass=${escapeFilterValue(c.userObjectClass)})(${c.userIdAttribute}=${idAssertion})${c.userLdapFilter})`;
  }

  private userAttributes(): string[] {
    const c = this.cfg;
    const attrs = [c.userIdAttribute, c.userRealNameAttribute, c.userEmailAddressAttribute];
    if (c.groupType === 'dynamic') attrs.push(c.userMemberOfAttribute);
    if (c.userPasswordAttribute) attrs.push(c.userPasswordAttribute);
    return attrs;
  }

  private toUser(entry: Entry): LdapUser {
    const c = this.cfg;
    const first = (a: string) => {
      const v = values(entry, a)[0];
      return v === undefined ? '' : text(v);
    };
    return {
      dn: entry.dn,
      userId: first(c.userIdAttribute),
      realName: first(c.userRealNameAttribute),
      email: first(c.userEmailAddressAttribute),
      memberOf: c.groupType === 'dynamic' ? values(entry, c.userMemberOfAttribute).map(text) : [],
      passwords: c.userPasswordAttribute ? values(entry, c.userPasswordAttribute).map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'))) : [],
    };
  }

  /** A base-scope read of the search base: the server answers and the base exists. */
  async checkBase(): Promise<void> {
    await this.client.search(this.cfg.searchBase, { scope: 'base', filter: '(objectClass=*)', attributes: ['1.1'], sizeLimit: 1, timeLimit: this.cfg.connectionTimeoutSeconds });
  }

  /**
   * The one entry whose id attribute equals `userId` exactly (escaped: `*` in a user id is a
   * character, never a wildcard). Null when there is none or more than one (ambiguous: refused).
   */
  async findUser(userId: string): Promise<LdapUser | null> {
    const c = this.cfg;
    const { searchEntries } = await this.client.search(this.userBase, {
      scope: c.userSubtree ? 'sub' : 'one',
      filter: this.userFilter(escapeFilterValue(userId)),
      attributes: this.userAttributes(),
      explicitBufferAttributes: c.userPasswordAttribute ? [c.userPasswordAttribute] : [],
      sizeLimit: 2,
      timeLimit: c.connectionTimeoutSeconds,
    });
    if (searchEntries.length !== 1) return null;
    const u = this.toUser(searchEntries[0]);
    return u.userId ? u : null;
  }

  /** Users whose id starts with `prefix` (all users for ''), at most `limit`. */
  async findUsers(prefix: string, limit: number): Promise<LdapUser[]> {
    const c = this.cfg;
    const { searchEntries } = await this.client.search(this.userBase, {
      scope: c.userSubtree ? 'sub' : 'one',
      filter: this.userFilter(`${escapeFilterValue(prefix)}*`),
      attributes: this.userAttributes().filter((a) => a !== c.userPasswordAttribute),
      sizeLimit: limit,
      timeLimit: c.connectionTimeoutSeconds,
    });
    return searchEntries.map((e) => ({ ...this.toUser(e), passwords: [] })).filter((u) => u.userId);
  }

  /**
   * The user's group ids. Static: groups under groupBaseDn whose member attribute holds the user
   * (per groupMemberFormat). Dynamic: the first RDN value of each of the user's memberOf values.
   */
  async groupsOf(user: LdapUser): Promise<string[]> {
    const c = this.cfg;
    if (c.groupType === 'dynamic') {
      return [...new Set(user.memberOf.map((v) => firstRdnValue(v) ?? v).filter((g) => g !== ''))];
    }
    const member = formatMember(c.groupMemberFormat, user.userId, user.dn);
    const { searchEntries } = await this.client.search(underBase(c.groupBaseDn, c.searchBase), {
      scope: c.groupSubtree ? 'sub' : 'one',
      filter: `(&(objectClass=${escapeFilterValue(c.groupObjectClass)})(${c.groupMemberAttribute}=${escapeFilterValue(member)}))`,
      attributes: [c.groupIdAttribute],
      sizeLimit: 1000,
      timeLimit: c.connectionTimeoutSeconds,
    });
    const out = new Set<string>();
    for (const e of searchEntries) {
      const id = values(e, c.groupIdAttribute)[0];
      const name = id !== undefined ? text(id) : firstRdnValue(e.dn);
      if (name) out.add(name);
    }
    return [...out];
  }

  /**
   * Checks the user's password: by binding as the user's DN (blank userPasswordAttribute), or by
   * comparing with the password attribute (read and verified here when the account may read it,
   * else an LDAP compare). Call last: after a bind the session is the user's, not the service's.
   * An empty password is refused before anything is sent (an empty simple bind is an
   * unauthenticated bind, which servers accept).
   */
  async checkPassword(user: LdapUser, password: string): Promise<boolean> {
    if (!password) return false;
    const c = this.cfg;
    try {
      if (!c.userPasswordAttribute) {
        await this.client.bind(user.dn, password);
        return true;
      }
      if (user.passwords.length > 0) return user.passwords.some((v) => passwordMatches(password, v));
      return await this.client.compare(user.dn, c.userPasswordAttribute, password);
    } catch (e) {
      // The server's answer about these credentials (invalid, locked, not allowed): a refusal.
      if (e instanceof ldapts().ResultCodeError) return false;
      throw e;
    }
  }
}
