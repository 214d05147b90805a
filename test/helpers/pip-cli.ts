/**
 * pip and twine as a test drives them: the machine's global pip configuration (local file://
 * indexes, find-links, constraints) and every PIP_* variable switched off, so a package can only
 * come from the index the test names; no cache; installs into a target folder.
 */
import { spawn } from 'node:child_process';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  all: string;
}

/** The environment without pip's and twine's ambient settings. */
export function cleanPythonEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(PIP_|TWINE_)/.test(k)) env[k] = v;
  return { ...env, PIP_CONFIG_FILE: '/dev/null', PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INPUT: '1', PYTHONDONTWRITEBYTECODE: '1', ...extra };
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env ?? cleanPythonEnv(), cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let all = '';
    child.stdout.on('data', (d: Buffer) => ((stdout += d), (all += d)));
    child.stderr.on('data', (d: Buffer) => ((stderr += d), (all += d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr, all });
    });
  });
}

/** A recent pip (run straight from its wheel in the machine's PyPI tree), beside the installed 23.x. */
export const NEW_PIP = '/opt/pypi/files/pip-26.2.1-py3-none-any.whl/pip';

/** `pip install --target <target> --index-url <index> …` with an empty cache (the installed pip, or `pip` as a path). */
export function pipInstall(index: string, target: string, args: string[], pip?: string): Promise<RunResult> {
  return run('python3', [...(pip ? [pip] : ['-m', 'pip']), 'install', '--no-cache-dir', '--disable-pip-version-check', '--index-url', index, '--target', target, ...args]);
}

/** `twine upload --repository-url <url> -u <user> -p <password> …files`. */
export function twineUpload(url: string, user: string, password: string, files: string[], extra: string[] = []): Promise<RunResult> {
  return run('twine', ['upload', '--non-interactive', '--disable-progress-bar', '--repository-url', url, '-u', user, '-p', password, ...extra, ...files]);
}
