import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface ToolResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a real client (skopeo, podman…) and reports instead of throwing, so a test can assert failures too. */
export async function tool(cmd: string, ...args: string[]): Promise<ToolResult> {
  try {
    const r = await run(cmd, args, { maxBuffer: 16 << 20 });
    return { ok: true, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; message?: string };
    return { ok: false, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message ?? '' };
  }
}

export const skopeo = (...args: string[]): Promise<ToolResult> => tool('skopeo', '--insecure-policy', ...args);

/**
 * Builds an OCI image layout `<dir>/<name>` (tag `latest`) with umoci, no container engine: one
 * layer holding `files` (name → content). Returns the layout path.
 */
export async function buildImage(dir: string, name: string, files: Record<string, string | Buffer>): Promise<string> {
  const layout = path.join(dir, name);
  const bundle = path.join(dir, `${name}-bundle`);
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:latest`]);
  await run('umoci', ['unpack', '--rootless', '--image', `${layout}:latest`, bundle]);
  for (const [file, content] of Object.entries(files)) writeFileSync(path.join(bundle, 'rootfs', file), content);
  await run('umoci', ['repack', '--image', `${layout}:latest`, bundle]);
  return layout;
}
