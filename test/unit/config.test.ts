/**
 * loadConfig: embedded defaults, STOWAGE_* overrides, the optional JSON config file, and
 * validation errors that name the setting (the env var a user would have to fix).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config/config.js';

let dir: string;
let cwd: string;

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'stowage-config-'));
  cwd = process.cwd();
  // The default data dir is ./data: run from an empty folder so no stray ./data/stowage.json is read.
  process.chdir(dir);
});
after(() => {
  process.chdir(cwd);
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh data directory, optionally holding a stowage.json. */
function dataDir(file?: unknown): string {
  const d = mkdtempSync(path.join(dir, 'data-'));
  if (file !== undefined) writeFileSync(path.join(d, 'stowage.json'), typeof file === 'string' ? file : JSON.stringify(file));
  return d;
}

/** Asserts loadConfig(env) fails with a ConfigError whose message matches every pattern. */
function rejects(env: NodeJS.ProcessEnv, ...patterns: RegExp[]): void {
  assert.throws(
    () => loadConfig(env),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      for (const p of patterns) assert.match(e.message, p);
      return true;
    },
  );
}

describe('loadConfig defaults', () => {
  it('uses the embedded defaults with an empty environment', () => {
    const c = loadConfig({});
    assert.equal(c.dataDir, path.resolve(dir, 'data'));
    assert.equal(c.http.port, 8081);
    assert.equal(c.http.host, '0.0.0.0');
    assert.equal(c.http.shutdownGraceSeconds, 30);
    assert.equal(c.http.sendfile, true, 'stored files go out through sendfile when the helper is built');
    assert.equal(c.db, undefined, 'SQLite in the data dir unless STOWAGE_DB is set');
    assert.equal(c.baseUrl, undefined);
    assert.equal(c.adminPassword, undefined);
    assert.equal(c.anonymousAccess, true, 'anonymous reads are on by default, as in Nexus');
    assert.equal(c.log.level, 'info');
    assert.equal(c.blobs.gcGraceSeconds, 24 * 3600);
    assert.equal(c.proxy.defaultTimeoutSeconds, 60);
  });

  it('ignores empty variables (unset in a shell is often VAR=)', () => {
    const c = loadConfig({ STOWAGE_DATA_DIR: dataDir(), STOWAGE_HTTP_PORT: '', STOWAGE_DB: '' });
    assert.equal(c.http.port, 8081);
    assert.equal(c.db, undefined);
  });
});

describe('loadConfig environment overrides', () => {
  it('maps every STOWAGE_* variable to its setting', () => {
    const d = dataDir();
    const c = loadConfig({
      STOWAGE_DATA_DIR: d,
      STOWAGE_HTTP_PORT: '9091',
      STOWAGE_HTTP_HOST: '127.0.0.1',
      STOWAGE_MAX_JSON_BYTES: '2048',
      STOWAGE_SHUTDOWN_GRACE: '5',
      STOWAGE_DB: 'postgres://u:p@db:5432/stowage',
      STOWAGE_BASE_URL: 'https://repo.example.com/nexus/',
      STOWAGE_ADMIN_PASSWORD: 's3cret',
      STOWAGE_ANONYMOUS: 'false',
      STOWAGE_BLOB_GC_GRACE: '60',
      STOWAGE_BLOB_GC_INTERVAL: '0',
      STOWAGE_PROXY_TIMEOUT: '7.5',
      STOWAGE_PROXY_AUTOBLOCK_INITIAL: '10',
      STOWAGE_PROXY_AUTOBLOCK_MAX: '600',
      STOWAGE_LOG_LEVEL: 'debug',
      STOWAGE_SENDFILE: 'off',
    });
    assert.equal(c.dataDir, d);
    assert.equal(c.http.sendfile, false);
    assert.equal(c.http.port, 9091);
    assert.equal(c.http.host, '127.0.0.1');
    assert.equal(c.http.maxJsonBytes, 2048);
    assert.equal(c.http.shutdownGraceSeconds, 5);
    assert.equal(c.db, 'postgres://u:p@db:5432/stowage');
    assert.equal(c.baseUrl, 'https://repo.example.com/nexus', 'trailing slash removed');
    assert.equal(c.adminPassword, 's3cret');
    assert.equal(c.anonymousAccess, false);
    assert.equal(c.blobs.gcGraceSeconds, 60);
    assert.equal(c.blobs.gcIntervalSeconds, 0);
    assert.equal(c.proxy.defaultTimeoutSeconds, 7.5);
    assert.equal(c.proxy.autoBlockInitialSeconds, 10);
    assert.equal(c.proxy.autoBlockMaxSeconds, 600);
    assert.equal(c.log.level, 'debug');
  });

  it('resolves a relative data dir to an absolute path', () => {
    const c = loadConfig({ STOWAGE_DATA_DIR: 'rel/data' });
    assert.equal(c.dataDir, path.resolve(dir, 'rel/data'));
  });

  for (const [v, expected] of [
    ['1', true],
    ['true', true],
    ['YES', true],
    ['on', true],
    ['0', false],
    ['False', false],
    ['no', false],
    ['off', false],
  ] as const) {
    it(`reads STOWAGE_ANONYMOUS=${v} as ${expected}`, () => {
      assert.equal(loadConfig({ STOWAGE_DATA_DIR: dataDir(), STOWAGE_ANONYMOUS: v }).anonymousAccess, expected);
    });
  }
});

describe('loadConfig config file', () => {
  it('reads <dataDir>/stowage.json and lets env vars win over it', () => {
    const d = dataDir({ http: { port: 7000, host: '127.0.0.2' }, log: { level: 'warn' }, anonymousAccess: false });
    const fromFile = loadConfig({ STOWAGE_DATA_DIR: d });
    assert.equal(fromFile.http.port, 7000);
    assert.equal(fromFile.http.host, '127.0.0.2');
    assert.equal(fromFile.http.shutdownGraceSeconds, 30, 'unset keys keep their defaults (deep merge)');
    assert.equal(fromFile.log.level, 'warn');
    assert.equal(fromFile.anonymousAccess, false);
    const overridden = loadConfig({ STOWAGE_DATA_DIR: d, STOWAGE_HTTP_PORT: '7001', STOWAGE_ANONYMOUS: 'true' });
    assert.equal(overridden.http.port, 7001);
    assert.equal(overridden.http.host, '127.0.0.2');
    assert.equal(overridden.anonymousAccess, true);
  });

  it('reads the file named by STOWAGE_CONFIG', () => {
    const file = path.join(dataDir(), 'elsewhere.json');
    writeFileSync(file, JSON.stringify({ db: 'postgres://x@h/db', baseUrl: 'http://a.example' }));
    const c = loadConfig({ STOWAGE_DATA_DIR: dataDir(), STOWAGE_CONFIG: file });
    assert.equal(c.db, 'postgres://x@h/db');
    assert.equal(c.baseUrl, 'http://a.example');
  });

  it('refuses a STOWAGE_CONFIG that does not exist', () => {
    rejects({ STOWAGE_DATA_DIR: dataDir(), STOWAGE_CONFIG: path.join(dir, 'missing.json') }, /STOWAGE_CONFIG/, /missing\.json/);
  });

  it('refuses a config file that is not JSON, or not an object', () => {
    rejects({ STOWAGE_DATA_DIR: dataDir('{ "http": ') }, /Invalid config file/, /stowage\.json/);
    rejects({ STOWAGE_DATA_DIR: dataDir('[1, 2]') }, /Invalid config file/, /JSON object/);
  });

  it('names the setting when a value in the file is invalid', () => {
    rejects({ STOWAGE_DATA_DIR: dataDir({ http: { port: 'eighty' } }) }, /http\.port/);
    rejects({ STOWAGE_DATA_DIR: dataDir({ anonymousAccess: 'perhaps' }) }, /anonymousAccess/);
  });
});

describe('loadConfig validation names the variable', () => {
  const cases: Array<[string, string]> = [
    ['STOWAGE_HTTP_PORT', 'abc'],
    ['STOWAGE_HTTP_PORT', '65536'],
    ['STOWAGE_HTTP_PORT', '-1'],
    ['STOWAGE_HTTP_PORT', '80.5'],
    ['STOWAGE_HTTP_PORT', ' '],
    ['STOWAGE_MAX_JSON_BYTES', '0'],
    ['STOWAGE_SHUTDOWN_GRACE', '-5'],
    ['STOWAGE_BASE_URL', 'not a url'],
    ['STOWAGE_ANONYMOUS', 'maybe'],
    ['STOWAGE_SENDFILE', 'sometimes'],
    ['STOWAGE_BLOB_GC_GRACE', 'a day'],
    ['STOWAGE_BLOB_GC_INTERVAL', '1.5'],
    ['STOWAGE_PROXY_TIMEOUT', '0'],
    ['STOWAGE_PROXY_AUTOBLOCK_INITIAL', 'soon'],
    ['STOWAGE_PROXY_AUTOBLOCK_MAX', '-60'],
    ['STOWAGE_LOG_LEVEL', 'loud'],
  ];
  for (const [name, value] of cases) {
    it(`${name}=${JSON.stringify(value)} is refused with a message naming ${name}`, () => {
      rejects({ STOWAGE_DATA_DIR: dataDir(), [name]: value }, new RegExp(`\\b${name}\\b`), /^Invalid setting/);
    });
  }
});
