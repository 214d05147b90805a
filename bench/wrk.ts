/**
 * One wrk run for the benches (npm, Maven, PyPI): the same client and settings for Stowage and
 * its peers, each measured after a short warm-up run of its own (BENCH_WARMUP_SECONDS, default 2),
 * so that no server is measured while its JIT is still compiling the hot path — the first server
 * measured in a run used to be judged on its cold start.
 */
import { execFile } from 'node:child_process';

export interface WrkResult {
  rps: number;
  non2xx: number;
  errors: string;
}

const WARMUP = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);

function run(url: string, seconds: number, connections: number, headers: Record<string, string>): Promise<WrkResult> {
  const args = ['-t2', `-c${connections}`, `-d${seconds}s`];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(url);
  return new Promise((resolve, reject) =>
    execFile('wrk', args, { maxBuffer: 1 << 20 }, (err, stdout) => {
      if (err) return reject(err);
      resolve({
        rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1] ?? NaN),
        non2xx: Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0),
        errors: /Socket errors:.*/.exec(stdout)?.[0] ?? '',
      });
    }),
  );
}

/** Requests per second of GETs of `url` (2 threads, `connections` connections, `seconds` s), after the warm-up. */
export async function wrk(url: string, opts: { seconds: number; connections: number; headers?: Record<string, string> }): Promise<WrkResult> {
  const headers = opts.headers ?? {};
  if (WARMUP > 0) await run(url, WARMUP, opts.connections, headers);
  return run(url, opts.seconds, opts.connections, headers);
}
