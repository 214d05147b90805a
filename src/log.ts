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
  /**
   * An access line (`msg: 'request'`) at info, written without the redaction pass: its fields
   * are set by the access log alone and hold no credential, and redaction (wildcard paths) costs
   * ~15 µs a line, a tenth of a small request.
   */
  access(fields: Record<string, unknown>): void;
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

/** Lines are written in batches of this many bytes, or after FLUSH_MS, whichever comes first. */
const BATCH_BYTES = 8192;
const FLUSH_MS = 250;

/**
 * JSON lines on stderr (stdout stays for the CLI's own output, e.g. `migrate`), batched: written
 * line by line (even asynchronously) the access log cost a quarter of the request rate of a small
 * GET; in batches it costs nothing measurable. A line waits at most FLUSH_MS.
 */
export function createLogger(level: Level, destination?: DestinationStream): Logger {
  const dest = destination ?? pino.destination({ dest: 2, sync: false, minLength: BATCH_BYTES });
  const options = { level, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (label: string) => ({ level: label }) } };
  const p = pino({ ...options, redact: { paths: REDACT, censor: '[redacted]' } }, dest);
  const access = pino(options, dest);
  if (!destination && level !== 'silent') {
    setInterval(() => (dest as { flush?: () => void }).flush?.(), FLUSH_MS).unref();
    // A line logged just before the process ends (a failed start, `Stopped`) is still written.
    process.once('exit', () => flushSync(dest));
  }
  return adapt(p, dest, access);
}

function flushSync(dest: DestinationStream): void {
  try {
    (dest as { flushSync?: () => void }).flushSync?.();
  } catch {
    /* nothing buffered, or the stream is gone */
  }
}

type At = 'debug' | 'info' | 'warn' | 'error';

function adapt(p: Pino, dest: DestinationStream, access: Pino): Logger {
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
    child: (bindings) => adapt(p.child(bindings), dest, access.child(bindings)),
    pino: p,
    access: (fields) => access.info(fields, 'request'),
    flush: () => flushSync(dest),
  };
}
