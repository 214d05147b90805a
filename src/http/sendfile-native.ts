import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * The native sendfile helper (native/sendfile.c, built into dist/native/ by `npm run build`):
 * copies a file range to a socket inside the kernel, on a thread of its own. Optional: when it
 * was not built, or is switched off (`STOWAGE_SENDFILE=false`), files are sent from JavaScript.
 */
interface NativeSendfile {
  /** What the socket takes now, on this thread, without waiting: the bytes sent (stops at EAGAIN, an error or the file's end). */
  send(socketFd: number, fileFd: number, offset: number, length: number): number;
  /** Starts a transfer; `done(errno, sent)` comes on this thread (errno 0: all sent; -1: the file ended early). */
  start(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, done: (errno: number, sent: number) => void): object;
  /** Stops a transfer early (its `done` still comes, with ECANCELED). */
  cancel(handle: object): void;
}

let native: NativeSendfile | null = null;
let loadError = '';
try {
  native = createRequire(import.meta.url)('../../native/sendfile.node') as NativeSendfile;
} catch (e) {
  loadError = (e as Error).message.split('\n')[0];
}
let enabled = native !== null;

/** Switches the kernel path on or off (config `http.sendfile`); it stays off when the helper is missing. */
export function configureSendfile(on: boolean): void {
  enabled = on && native !== null;
}

/** What start-up logs: whether files go out through sendfile, and if not, why. */
export function sendfileStatus(): { active: boolean; reason?: string } {
  if (enabled) return { active: true };
  return { active: false, reason: native ? 'switched off by configuration (http.sendfile)' : `native helper not loaded: ${loadError}` };
}

/** Transfers in progress, each on its own thread; beyond MAX_ACTIVE the JavaScript path serves. */
let active = 0;
/** Transfers started since the process began (whole at once or on a thread). */
let started = 0;
/** Of those, the ones the socket took whole at once (no thread). */
let atOnce = 0;
const MAX_ACTIVE = 256;

/** The descriptor of a plain TCP socket the kernel path can write to, or null (TLS, no handle, helper off, busy). */
export function sendfileTarget(socket: Socket | null | undefined): number | null {
  if (!enabled || !socket || active >= MAX_ACTIVE) return null;
  if ((socket as Socket & { encrypted?: boolean }).encrypted) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

export interface KernelTransfer {
  cancel(): void;
}

/**
 * Copies `length` bytes of `fileFd` from `offset` to the socket; `done` gets the errno (0 when
 * complete) and the bytes sent. What the socket takes at once is sent on this thread first, as
 * nginx does; most files a build fetches fit the socket's buffer, and then `done` is called before
 * this returns and no thread starts: a thread start and the completion's wake-up of the event loop
 * cost more than the copy. A bare node server sending a 114 KB jar this way, one connection
 * (`wrk -c1`): median 51–59 µs a request, against 84–118 µs with a thread per file (15–17.8k
 * against 6.6–9.9k requests/s). The rest, when there is any, goes on a thread of its own. Throws
 * `KernelSendUnavailable` (with the bytes already sent) when that thread cannot start: the caller
 * carries on from there.
 */
export function kernelSend(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, done: (errno: number, sent: number) => void): KernelTransfer {
  started++;
  const now = native!.send(socketFd, fileFd, offset, length);
  if (now === length) {
    atOnce++;
    done(0, length);
    return { cancel: () => undefined };
  }
  let finished = false;
  let handle: object;
  try {
    handle = native!.start(socketFd, fileFd, offset + now, length - now, stallMs, (errno, sent) => {
      finished = true;
      active--;
      done(errno, now + sent);
    });
  } catch (e) {
    throw new KernelSendUnavailable((e as Error).message, now);
  }
  active++;
  return {
    cancel: () => {
      if (!finished) native!.cancel(handle);
    },
  };
}

/** No thread or descriptor to spare for a transfer; `sent` bytes already went to the socket. */
export class KernelSendUnavailable extends Error {
  constructor(
    message: string,
    readonly sent: number,
  ) {
    super(message);
  }
}

/** Kernel transfers running now, started in all, and of those sent whole at once (tests, metrics). */
export function kernelSends(): { active: number; started: number; atOnce: number } {
  return { active, started, atOnce };
}
