import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * The real npm CLI against a registry URL, isolated: a temp `--userconfig` (.npmrc holding only
 * what the test gives), a new empty `--cache` on every run, and none of the `npm_config_*`
 * variables of a surrounding `npm test`.
 */
export interface NpmResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr, for messages npm prints on either. */
  all: string;
}

export class NpmClient {
  readonly dir: string;
  readonly npmrc: string;
  private runs = 0;

  constructor(
    readonly registry: string,
    opts: { token?: string; lines?: string[] } = {},
  ) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'npm-cli-'));
    this.npmrc = path.join(this.dir, '.npmrc');
    this.writeConfig(opts.token, opts.lines);
  }

  /** `//host/path/:` — the key npm files credentials under for the registry. */
  get nerfDart(): string {
    const u = new URL(this.registry);
    return `//${u.host}${u.pathname.endsWith('/') ? u.pathname : u.pathname + '/'}`;
  }

  writeConfig(token?: string, lines: string[] = []): void {
    const out = [`registry=${this.registry}`, 'update-notifier=false', 'fund=false', 'loglevel=warn', ...lines];
    if (token) out.push(`${this.nerfDart}:_authToken=${token}`);
    writeFileSync(this.npmrc, out.join('\n') + '\n');
  }

  /** A new project directory with a package.json. */
  project(pkg: Record<string, unknown> = { name: 'app', version: '1.0.0', private: true }, files: Record<string, string> = {}): string {
    const d = path.join(this.dir, `proj-${++this.runs}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(path.join(d, 'package.json'), JSON.stringify(pkg, null, 2));
    for (const [n, c] of Object.entries(files)) writeFileSync(path.join(d, n), c);
    return d;
  }

  /** Runs `npm <args>`; `input` lines are written one at a time as npm prompts. */
  run(args: string[], opts: { cwd?: string; input?: string[]; timeoutMs?: number } = {}): Promise<NpmResult> {
    const cache = path.join(this.dir, `cache-${++this.runs}`);
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^npm_/i.test(k)) env[k] = v;
    env.NO_COLOR = '1';
    const proc = spawn('npm', [...args, '--registry', this.registry, '--userconfig', this.npmrc, '--cache', cache], {
      cwd: opts.cwd ?? this.dir,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const input = [...(opts.input ?? [])];
    const feed = () => {
      // npm's prompts read one line each: answer when a prompt appears.
      if (input.length > 0 && /(Username|Password|password|Email)[^:\n]*: ?$/.test(stdout + stderr)) {
        proc.stdin.write(input.shift() + '\n');
        if (input.length === 0) setTimeout(() => proc.stdin.end(), 200);
      }
    };
    proc.stdout.on('data', (d) => {
      stdout += d;
      feed();
    });
    proc.stderr.on('data', (d) => {
      stderr += d;
      feed();
    });
    if (!opts.input) proc.stdin.end();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
      proc.on('error', reject);
      proc.on('close', (code) => {
        clearTimeout(timer);
        rmSync(cache, { recursive: true, force: true });
        resolve({ code: code ?? -1, stdout, stderr, all: stdout + stderr });
      });
    });
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
