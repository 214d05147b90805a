export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, ...rest: unknown[]): void;
  info(msg: string, ...rest: unknown[]): void;
  warn(msg: string, ...rest: unknown[]): void;
  error(msg: string, ...rest: unknown[]): void;
}

/** Line logger to stderr: time, level, message. */
export function createLogger(level: Level): Logger {
  const min = ORDER[level];
  const out = (l: Exclude<Level, 'silent'>) => (msg: string, ...rest: unknown[]) => {
    if (ORDER[l] < min) return;
    const extra = rest.map((r) => (r instanceof Error ? (r.stack ?? r.message) : typeof r === 'string' ? r : JSON.stringify(r))).join(' ');
    process.stderr.write(`${new Date().toISOString()} ${l.toUpperCase()} ${msg}${extra ? ' ' + extra : ''}\n`);
  };
  return { debug: out('debug'), info: out('info'), warn: out('warn'), error: out('error') };
}
