/**
 * Signed repodata (`repo_gpgcheck=1`): a repository's optional GPG key (armored private key and
 * passphrase), stored sealed with the server's secrets, signs repomd.xml (a detached armored
 * signature of the exact bytes, `repomd.xml.asc`) and publishes its public half
 * (`repomd.xml.key`). The openpgp library is not installed here; the system's gpg does the
 * cryptography, in a throw-away home directory per use.
 */
import { execFile, execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { badRequest } from '../../src/errors.js';
import type { Repository } from '../../src/repository/repository.js';
import type { Stowage } from '../../src/stowage.js';

const exec = promisify(execFile);

export interface SigningKey {
  keypair: string;
  passphrase: string;
}

export interface Signature {
  asc: string;
  publicKey: string;
  fingerprint: string;
}

const SCOPE = 'yum-signing';

/**
 * The repository's key, or null: the configuration's `yumSigning` section (Nexus's shape) first,
 * else the one set through `PUT /v1/yum/signing` (a sealed property). Both are sealed at rest.
 */
export async function signingKeyOf(app: Stowage, repo: Repository): Promise<SigningKey | null> {
  const section = repo.section<{ keypair?: string | null; passphrase?: string | null }>('yumSigning');
  if (section?.keypair) return { keypair: app.secrets.decrypt(section.keypair), passphrase: section.passphrase ? app.secrets.decrypt(section.passphrase) : '' };
  const sealed = await app.content.getProperty(SCOPE, String(repo.id));
  if (!sealed) return null;
  return JSON.parse(app.secrets.decrypt(sealed)) as SigningKey;
}

export async function storeSigningKey(app: Stowage, repo: Repository, key: SigningKey | null): Promise<void> {
  await repo.change({ source: 'rest' }, (c) => {
    if (key) c.setProperty(SCOPE, String(repo.id), app.secrets.encrypt(JSON.stringify(key)));
    else c.deleteProperty(SCOPE, String(repo.id));
  });
}

export function keyIdOf(key: SigningKey | null): string | null {
  return key ? createHash('sha256').update(key.keypair).digest('hex') : null;
}

/** True when repomd.xml exists but was not signed with the repository's current key (or lack of one). */
export async function signingChanged(app: Stowage, repo: Repository, repomdPath: string): Promise<boolean> {
  const current = await app.content.findAsset(repo.id, repomdPath);
  if (!current) return false;
  return ((current.attributes.signingKey as string | null | undefined) ?? null) !== keyIdOf(await signingKeyOf(app, repo));
}

async function gpg(home: string, args: string[], input?: string): Promise<string> {
  const p = exec('gpg', ['--batch', '--no-tty', '--quiet', '--homedir', home, ...args], { maxBuffer: 1 << 22, timeout: 60_000 });
  p.child.stdin!.on('error', () => undefined);
  p.child.stdin!.end(input ?? '');
  return (await p).stdout;
}

interface Keyring {
  home: string;
  fingerprint: string;
  publicKey: string;
}

/**
 * Imported keys, kept while in use: starting gpg's agent and unlocking a key costs seconds on a
 * busy machine, signing with a warm one a fraction of that. The home holds the key as gpg stores
 * it (protected by its passphrase); the passphrase itself only ever goes through a pipe.
 */
const keyrings = new Map<string, Promise<Keyring>>();
const MAX_KEYRINGS = 8;

async function dropKeyring(home: string): Promise<void> {
  homes.delete(home);
  await exec('gpgconf', ['--homedir', home, '--kill', 'gpg-agent']).catch(() => undefined);
  await rm(home, { recursive: true, force: true });
}

async function importKey(key: SigningKey): Promise<Keyring> {
  const home = await mkdtemp(path.join(tmpdir(), 'stowage-gpg-'));
  removeAtExit(home);
  try {
    // The agent must not remember an unlocked key: every signature proves the passphrase again.
    await writeFile(path.join(home, 'gpg-agent.conf'), 'default-cache-ttl 0\nmax-cache-ttl 0\nallow-loopback-pinentry\n');
    try {
      await gpg(home, ['--import'], key.keypair);
    } catch (e) {
      throw badRequest(`keypair: gpg cannot import it: ${lastLine(e)}`, { field: 'keypair' });
    }
    const colons = await gpg(home, ['--with-colons', '--list-secret-keys']);
    const fingerprint = /^fpr:+([0-9A-F]+):/m.exec(colons)?.[1];
    if (!fingerprint) throw badRequest('keypair: holds no private key', { field: 'keypair' });
    const publicKey = await gpg(home, ['--armor', '--export', fingerprint]);
    return { home, fingerprint, publicKey };
  } catch (e) {
    await dropKeyring(home);
    throw e;
  }
}

/** Homes still on disk; removed (and their agents stopped) when the process exits. */
const homes = new Set<string>();
let exitHook = false;

function removeAtExit(home: string): void {
  homes.add(home);
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const h of homes) {
      try {
        execFileSync('gpgconf', ['--homedir', h, '--kill', 'gpg-agent'], { stdio: 'ignore', timeout: 5000 });
      } catch {
        // The agent also stops by itself once its socket is gone.
      }
      rmSync(h, { recursive: true, force: true });
    }
  });
}

function keyring(key: SigningKey): Promise<Keyring> {
  const id = createHash('sha256').update(key.keypair).digest('hex');
  let k = keyrings.get(id);
  if (!k) {
    k = importKey(key);
    keyrings.set(id, k);
    k.catch(() => keyrings.delete(id));
    if (keyrings.size > MAX_KEYRINGS) {
      const [oldId, old] = keyrings.entries().next().value!;
      keyrings.delete(oldId);
      void old.then((r) => dropKeyring(r.home)).catch(() => undefined);
    }
  }
  return k;
}

/** Signs `data` with `key`; a key gpg cannot import or unlock is a 400 naming why. */
export async function signDetached(key: SigningKey, data: Buffer): Promise<Signature> {
  const ring = await keyring(key);
  const file = path.join(ring.home, `data-${randomUUID()}`);
  await writeFile(file, data);
  try {
    const asc = await gpg(
      ring.home,
      ['--pinentry-mode', 'loopback', '--passphrase-fd', '0', '--local-user', ring.fingerprint, '--armor', '--detach-sign', '--output', '-', file],
      key.passphrase ?? '',
    );
    return { asc, publicKey: ring.publicKey, fingerprint: ring.fingerprint };
  } catch (e) {
    throw badRequest(`passphrase: gpg cannot sign with the key: ${lastLine(e)}`, { field: 'passphrase' });
  } finally {
    await rm(file, { force: true });
  }
}

function lastLine(e: unknown): string {
  const err = e as { stderr?: string; message?: string };
  return (err.stderr || err.message || String(e)).trim().split('\n').pop() ?? '';
}
