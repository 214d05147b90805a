import { pino, type Logger as Pino, type DestinationStream } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error' | 'silent';

/**
 * What the code logs through: `log.warn('message', err, …)` as before. Underneath, pino writes one
 * JSON line per call: an Error among the arguments becomes `err` (type, message, stack), a plain
 * object is merged into the line's fields, strings are appended to the message.
 */
export interface Logger {
  debug(msg: string, ...rest: unknown[]): void;
  info(msg: string, ...rest: unknown[]): void;
  warn(msg: string, ...rest: unknown[]): void;
  error(msg: string, ...rest: unknown[]): void;
  /** A logger whose lines all carry `bindings` (a request's `reqId`). */
  child(bindings: Record<string, unknown>): Logger;
  /** The pino logger, for structured lines (`log.pino.info({ fields }, 'msg')`). */
  readonly pino: Pino;
  /** Writes out what is buffered (before process.exit). */
  flush(): void;
}

/**
 * Fields never written as they are: credentials in whatever a caller hands to the logger
 * (headers, configs, request bodies). The access line itself carries no header.
 */
export const REDACT = [
  'authorization',
  'cookie',
  'password',
  'token',
  'secret',
  'headers.authorization',
  'headers.cookie',
  'headers["set-cookie"]',
  '*.authorization',
  '*.Authorization',
  '*.cookie',
  '*.password',
  '*.token',
  '*.secret',
  '*.headers.authorization',
  '*.headers.cookie',
];

/**
 * JSON lines on stderr (stdout stays for the CLI's own output, e.g. `migrate`), through an
 * asynchronous buffered writer so a busy server does not make one write(2) per line.
 */
export function createLogger(level: Level, destination?: DestinationStream): Logger {
  const dest = destination ?? pino.destination({ dest: 2, sync: false });
  const p = pino(
    {
      level,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT, censor: '[redacted]' },
    },
    dest,
  );
  if (!destination) {
    // A line logged just before the process ends (a failed start, `Stopped`) is still written.
    process.once('exit', () => flushSync(dest));
  }
  return adapt(p, dest);
}

function flushSync(dest: DestinationStream): void {
  try {
    (dest as { flushSync?: () => void }).flushSync?.();
  } catch {
    /* nothing buffered, or the stream is gone */
  }
}

type At = 'debug' | 'info' | 'warn' | 'error';

function adapt(p: Pino, dest: DestinationStream): Logger {
  const at =
    (level: At) =>
    (msg: string, ...rest: unknown[]): void => {
      if (!p.isLevelEnabled(level)) return;
      if (rest.length === 0) return p[level](msg);
      let fields: Record<string, unknown> | undefined;
      let text = msg;
      for (const r of rest) {
        if (r instanceof Error) (fields ??= {}).err ??= r;
        else if (r !== null && typeof r === 'object') fields = { ...fields, ...(r as Record<string, unknown>) };
        else if (r !== undefined) text += ' ' + String(r);
      }
      if (fields) p[level](fields, text);
      else p[level](text);
    };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (bindings) => adapt(p.child(bindings), dest),
    pino: p,
    flush: () => flushSync(dest),
  };
}
