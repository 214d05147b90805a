import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './net.js';

/**
 * A real OpenLDAP `slapd` for the LDAP tests (Debian packages slapd + ldap-utils): a private
 * slapd.conf in a temp dir (mdb backend, core/cosine/inetorgperson/nis schemas, the memberof
 * overlay so users carry `memberOf` for dynamic groups), listening on 127.0.0.1 only, loaded with
 * the directory below. It can be stopped and started again on the same port and data, as a
 * directory server that goes away and comes back.
 */

export const SUFFIX = 'dc=example,dc=com';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;
/** The service account Stowage binds as to search (SIMPLE auth scheme). */
export const SERVICE_DN = `cn=stowage,ou=services,${SUFFIX}`;
export const SERVICE_PASSWORD = 'svc-secret-4711';

export interface DirectoryUser {
  uid: string;
  cn: string;
  sn: string;
  mail: string;
  password: string;
  /** groupOfNames groups (cn) listing the user as `member` (also its memberOf values). */
  groups: string[];
  /** posixGroup groups (cn) listing the uid as `memberUid`. */
  posixGroups: string[];
}

/** The people in the test directory. `r(o)b*,x` has every filter special and a DN comma in its uid. */
export const USERS: DirectoryUser[] = [
  { uid: 'alice', cn: 'Alice Liddell', sn: 'Liddell', mail: 'alice@example.com', password: 'alice-pw-1', groups: ['devs'], posixGroups: ['builders'] },
  { uid: 'bob', cn: 'Bob Builder', sn: 'Builder', mail: 'bob@example.com', password: 'bob-pw-2', groups: ['ops'], posixGroups: [] },
  { uid: 'carol', cn: 'Carol Danvers', sn: 'Danvers', mail: 'carol@example.com', password: 'carol-pw-3', groups: [], posixGroups: [] },
  { uid: 'r(o)b*,x', cn: 'Rob Special', sn: 'Special', mail: 'rob@example.com', password: 'rob-pw-4', groups: ['devs'], posixGroups: [] },
];

export function user(uid: string): DirectoryUser {
  const u = USERS.find((x) => x.uid === uid);
  if (!u) throw new Error(`no directory user ${uid}`);
  return u;
}

/** RFC 4514 escaping, written independently of the code under test. */
function dnValue(v: string): string {
  return v
    .replace(/[,+"\\<>;=]/g, (c) => '\\' + c)
    .replace(/^[ #]/, (c) => '\\' + c)
    .replace(/ $/, '\\ ');
}

export function userDn(uid: string): string {
  return `uid=${dnValue(uid)},${PEOPLE}`;
}

/** `{SSHA}` as slappasswd writes it: base64(sha1(password + salt) + salt). */
function ssha(password: string): string {
  const salt = randomBytes(8);
  const digest = createHash('sha1').update(password).update(salt).digest();
  return '{SSHA}' + Buffer.concat([digest, salt]).toString('base64');
}

function directoryLdif(): string {
  const entries: string[] = [
    `dn: ${SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example`,
    `dn: ${PEOPLE}\nobjectClass: organizationalUnit\nou: people`,
    `dn: ${GROUPS}\nobjectClass: organizationalUnit\nou: groups`,
    `dn: ou=services,${SUFFIX}\nobjectClass: organizationalUnit\nou: services`,
    `dn: ${SERVICE_DN}\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: stowage\nuserPassword: ${ssha(SERVICE_PASSWORD)}`,
  ];
  for (const u of USERS) {
    entries.push(
      [`dn: ${userDn(u.uid)}`, 'objectClass: inetOrgPerson', `uid: ${u.uid}`, `cn: ${u.cn}`, `sn: ${u.sn}`, `mail: ${u.mail}`, `userPassword: ${ssha(u.password)}`].join('\n'),
    );
  }
  // Groups after their members, so the memberof overlay records memberOf on the users.
  const groupNames = [...new Set(USERS.flatMap((u) => u.groups))];
  for (const g of groupNames) {
    const members = USERS.filter((u) => u.groups.includes(g)).map((u) => `member: ${userDn(u.uid)}`);
    entries.push([`dn: cn=${g},${GROUPS}`, 'objectClass: groupOfNames', `cn: ${g}`, ...members].join('\n'));
  }
  const posix = [...new Set(USERS.flatMap((u) => u.posixGroups))];
  posix.forEach((g, i) => {
    const members = USERS.filter((u) => u.posixGroups.includes(g)).map((u) => `memberUid: ${u.uid}`);
    entries.push([`dn: cn=${g},${GROUPS}`, 'objectClass: posixGroup', `cn: ${g}`, `gidNumber: ${5000 + i}`, ...members].join('\n'));
  });
  return entries.join('\n\n') + '\n';
}

const SCHEMA_DIR = '/etc/ldap/schema';
const MODULE_DIR = '/usr/lib/ldap';

function which(cmd: string): string | null {
  for (const dir of ['/usr/sbin', '/usr/bin', '/sbin', '/bin', ...(process.env.PATH ?? '').split(':')]) {
    const p = path.join(dir, cmd);
    if (dir && existsSync(p)) return p;
  }
  return null;
}

export class Slapd {
  readonly url: string;
  readonly rootDn = `cn=admin,${SUFFIX}`;
  readonly rootPassword = 'root-secret';
  /** True when the memberof overlay is loaded (users carry memberOf). */
  readonly memberOf: boolean;
  private proc: ChildProcess | null = null;
  private output = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly slapdBin: string,
  ) {
    this.url = `ldap://127.0.0.1:${port}`;
    this.memberOf = Slapd.hasMemberOf();
  }

  /** Whether this machine's slapd has the memberof overlay (Debian ships it in /usr/lib/ldap). */
  static hasMemberOf(): boolean {
    return existsSync(path.join(MODULE_DIR, 'memberof.la')) || existsSync(path.join(MODULE_DIR, 'memberof.so'));
  }

  /** A configured, loaded and running slapd on a free port. */
  static async create(): Promise<Slapd> {
    const bin = which('slapd');
    const add = which('ldapadd');
    const passwd = which('slappasswd');
    if (!bin || !add || !passwd) {
      throw new Error('slapd / ldap-utils are not installed: DEBIAN_FRONTEND=noninteractive apt-get install -y slapd ldap-utils');
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'stowage-slapd-'));
    const s = new Slapd(await freePort(), dir, bin);
    s.writeConfig(passwd);
    await s.start();
    const ldif = path.join(dir, 'directory.ldif');
    writeFileSync(ldif, directoryLdif());
    const r = spawnSync(add, ['-x', '-H', s.url, '-D', s.rootDn, '-w', s.rootPassword, '-f', ldif], { encoding: 'utf8' });
    if (r.status !== 0) {
      await s.destroy();
      throw new Error(`ldapadd failed: ${r.stderr || r.stdout}`);
    }
    return s;
  }

  private writeConfig(slappasswd: string): void {
    const hashed = spawnSync(slappasswd, ['-s', this.rootPassword], { encoding: 'utf8' });
    if (hashed.status !== 0) throw new Error(`slappasswd failed: ${hashed.stderr}`);
    const data = path.join(this.dir, 'data');
    mkdirSync(data, { recursive: true });
    const conf = [
      ...['core', 'cosine', 'inetorgperson', 'nis'].map((s) => `include ${SCHEMA_DIR}/${s}.schema`),
      `pidfile ${path.join(this.dir, 'slapd.pid')}`,
      `argsfile ${path.join(this.dir, 'slapd.args')}`,
      `modulepath ${MODULE_DIR}`,
      'moduleload back_mdb',
      ...(this.memberOf ? ['moduleload memberof'] : []),
      '',
      'database mdb',
      `suffix "${SUFFIX}"`,
      `rootdn "${this.rootDn}"`,
      `rootpw ${hashed.stdout.trim()}`,
      `directory ${data}`,
      'maxsize 104857600',
      'index objectClass eq',
      'index uid,cn,member,memberUid eq',
      // Passwords: users may authenticate with theirs; only the service account reads them (what
      // the userPasswordAttribute mode needs); anonymous searches never see them.
      'access to attrs=userPassword',
      '  by self write',
      `  by dn.exact="${SERVICE_DN}" read`,
      '  by anonymous auth',
      '  by * none',
      'access to *',
      '  by * read',
      ...(this.memberOf ? ['', 'overlay memberof', 'memberof-group-oc groupOfNames', 'memberof-member-ad member', 'memberof-memberof-ad memberOf', 'memberof-refint TRUE'] : []),
      '',
    ].join('\n');
    writeFileSync(path.join(this.dir, 'slapd.conf'), conf);
  }

  get running(): boolean {
    return this.proc !== null;
  }

  /** Starts slapd (same port, same data) and resolves once it accepts connections. */
  async start(): Promise<void> {
    if (this.proc) return;
    this.output = '';
    // -d 0 keeps slapd in the foreground (a child we can stop) without debug output.
    const proc = spawn(this.slapdBin, ['-f', path.join(this.dir, 'slapd.conf'), '-h', `${this.url}/`, '-d', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout!.on('data', (d) => (this.output += d));
    proc.stderr!.on('data', (d) => (this.output += d));
    this.proc = proc;
    // A test process that dies without stopping us must not leave slapd running.
    const killOnExit = () => proc.kill('SIGKILL');
    process.once('exit', killOnExit);
    proc.once('exit', () => process.removeListener('exit', killOnExit));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        this.proc = null;
        throw new Error(`slapd exited (${proc.exitCode ?? proc.signalCode}):\n${this.output}`);
      }
      if (await canConnect(this.port)) return;
      if (Date.now() > deadline) {
        await this.stop();
        throw new Error(`slapd did not start listening on ${this.port}:\n${this.output}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Stops slapd (SIGTERM: it flushes and exits) and waits until the port refuses connections. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
