import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/**
 * The native sendfile helper (native/sendfile.c, built into dist/native/ by `npm run build`):
 * copies a file range to a socket inside the kernel, on a thread of its own. Optional: when it
 * was not built, or is switched off (`STOWAGE_SENDFILE=false`), files are sent from JavaScript.
 */
interface NativeSendfile {
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
/** Transfers started since the process began. */
let started = 0;
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

/** Starts copying `length` bytes of `fileFd` from `offset` to the socket; `done` gets the errno (0 when complete). */
export function kernelSend(socketFd: number, fileFd: number, offset: number, length: number, stallMs: number, done: (errno: number, sent: number) => void): KernelTransfer {
  let finished = false;
  // Throws when the transfer cannot start (no descriptor or thread left): the caller falls back.
  const handle = native!.start(socketFd, fileFd, offset, length, stallMs, (errno, sent) => {
    finished = true;
    active--;
    done(errno, sent);
  });
  active++;
  started++;
  return {
    cancel: () => {
      if (!finished) native!.cancel(handle);
    },
  };
}

/** Kernel transfers running now, and started in all (tests, metrics). */
export function kernelSends(): { active: number; started: number } {
  return { active, started };
}
