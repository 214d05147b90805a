/*
 * sendfile(2) for Node: copies a range of a file to a connected socket inside the kernel, the
 * way nginx serves files, so the bytes never pass through JavaScript buffers (two copies per
 * byte saved, and the event loop stays free). Node itself has no sendfile.
 *
 * Each transfer runs on a thread of its own (not the libuv pool, which a slow client would
 * otherwise hold for minutes), over a dup() of the socket descriptor: if Node closes its socket
 * meanwhile, the number cannot be reused under the transfer. The socket is non-blocking (libuv
 * made it so), so the thread waits for room with poll(), together with an eventfd that `cancel`
 * signals. The result comes back to JavaScript through a thread-safe function.
 *
 * Before a thread, `send` tries on the JavaScript thread what the socket takes at once, as nginx
 * does: most files a build fetches fit the socket's buffer, and then no thread is started at all
 * (a thread start and the completion's wake-up of the event loop cost more than the copy). As
 * with nginx without aio, a file not in the page cache is read from disk there, for at most what
 * the socket's buffer takes; the files served are mostly ones just written or read.
 *
 * JavaScript API (src/http/sendfile-native.ts):
 *   send(socketFd, fileFd, offset, length) -> bytes sent now (>= 0), or -errno
 *   start(socketFd, fileFd, offset, length, stallMs, callback(errno, sent)) -> handle
 *   cancel(handle)
 * errno 0: all `length` bytes sent; -1: the file ended early; ETIMEDOUT: no progress for stallMs;
 * ECANCELED: cancelled; else the errno of sendfile or poll.
 */
#define _GNU_SOURCE
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sendfile.h>
#include <unistd.h>

typedef struct {
  int out_fd;     /* our dup of the socket; closed by the thread when it ends */
  int in_fd;      /* the file: owned by JavaScript, which closes it after the callback */
  int cancel_fd;  /* eventfd; closed when the last reference goes */
  int64_t offset;
  int64_t length;
  int stall_ms;
  int err;
  int64_t sent;
  atomic_int refs; /* the thread's result delivery, and the JavaScript handle */
  napi_threadsafe_function tsfn;
} job_t;

static void job_unref(job_t *job) {
  if (atomic_fetch_sub(&job->refs, 1) == 1) {
    close(job->cancel_fd);
    free(job);
  }
}

static void *run(void *arg) {
  job_t *job = (job_t *)arg;
  off_t off = (off_t)job->offset;
  int64_t left = job->length;
  int err = 0;
  while (left > 0) {
    size_t want = left > (1 << 30) ? (size_t)1 << 30 : (size_t)left;
    ssize_t n = sendfile(job->out_fd, job->in_fd, &off, want);
    if (n > 0) {
      left -= n;
      job->sent += n;
      continue;
    }
    if (n == 0) {
      err = -1; /* the file is shorter than the range */
      break;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN) {
      err = errno;
      break;
    }
    struct pollfd fds[2] = {{job->out_fd, POLLOUT, 0}, {job->cancel_fd, POLLIN, 0}};
    int r = poll(fds, 2, job->stall_ms);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      err = errno;
      break;
    }
    if (r == 0) {
      err = ETIMEDOUT;
      break;
    }
    if (fds[1].revents) {
      err = ECANCELED;
      break;
    }
    /* POLLOUT, or POLLERR/POLLHUP: the next sendfile says which. */
  }
  job->err = err;
  close(job->out_fd);
  job->out_fd = -1;
  /* `deliver` may free the job as soon as it is queued: keep the function in a local. */
  napi_threadsafe_function tsfn = job->tsfn;
  napi_call_threadsafe_function(tsfn, job, napi_tsfn_blocking);
  napi_release_threadsafe_function(tsfn, napi_tsfn_release);
  return NULL;
}

/* On the JavaScript thread: callback(errno, sent), then the thread's reference goes. */
static void deliver(napi_env env, napi_value callback, void *context, void *data) {
  (void)context;
  job_t *job = (job_t *)data;
  if (env != NULL && callback != NULL) {
    napi_value argv[2], undefined;
    napi_create_int32(env, job->err, &argv[0]);
    napi_create_double(env, (double)job->sent, &argv[1]);
    napi_get_undefined(env, &undefined);
    napi_call_function(env, undefined, callback, 2, argv, NULL);
  }
  job_unref(job);
}

static void handle_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  job_unref((job_t *)data);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
  napi_throw_error(env, NULL, msg);
  return NULL;
}

static napi_value start(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6) {
    napi_throw_type_error(env, NULL, "start(socketFd, fileFd, offset, length, stallMs, callback)");
    return NULL;
  }
  int32_t sock_fd, file_fd, stall_ms;
  int64_t offset, length;
  if (napi_get_value_int32(env, argv[0], &sock_fd) != napi_ok || napi_get_value_int32(env, argv[1], &file_fd) != napi_ok ||
      napi_get_value_int64(env, argv[2], &offset) != napi_ok || napi_get_value_int64(env, argv[3], &length) != napi_ok ||
      napi_get_value_int32(env, argv[4], &stall_ms) != napi_ok || sock_fd < 0 || file_fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "start: bad arguments");
    return NULL;
  }
  job_t *job = calloc(1, sizeof *job);
  if (!job) return throw_errno(env, "start", ENOMEM);
  job->in_fd = file_fd;
  job->offset = offset;
  job->length = length;
  job->stall_ms = stall_ms > 0 ? stall_ms : -1;
  atomic_init(&job->refs, 2);
  job->out_fd = -1;
  job->cancel_fd = -1;
  const char *what = NULL;
  int e = 0;
  job->out_fd = fcntl(sock_fd, F_DUPFD_CLOEXEC, 0);
  if (job->out_fd < 0) {
    what = "dup";
    e = errno;
    goto fail;
  }
  job->cancel_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (job->cancel_fd < 0) {
    what = "eventfd";
    e = errno;
    goto fail;
  }
  napi_value name;
  napi_create_string_utf8(env, "stowage.sendfile", NAPI_AUTO_LENGTH, &name);
  if (napi_create_threadsafe_function(env, argv[5], NULL, name, 0, 1, NULL, NULL, NULL, deliver, &job->tsfn) != napi_ok) {
    what = "cannot create the completion callback";
    goto fail;
  }
  napi_value handle;
  if (napi_create_external(env, job, handle_finalize, NULL, &handle) != napi_ok) {
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_release);
    what = "cannot create the handle";
    goto fail;
  }
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 64 * 1024);
  pthread_t thread;
  e = pthread_create(&thread, &attr, run, job);
  pthread_attr_destroy(&attr);
  if (e != 0) {
    /* The handle's finalizer drops one reference; this drops the thread's. */
    napi_release_threadsafe_function(job->tsfn, napi_tsfn_release);
    close(job->out_fd);
    job_unref(job);
    return throw_errno(env, "pthread_create", e);
  }
  return handle;

fail:
  /* Nothing started and no handle given out: the job is ours alone. */
  if (job->out_fd >= 0) close(job->out_fd);
  if (job->cancel_fd >= 0) close(job->cancel_fd);
  free(job);
  if (e != 0) return throw_errno(env, what, e);
  napi_throw_error(env, NULL, what);
  return NULL;
}

/* What the socket takes now, without waiting: the bytes sent (0 when it is full). Stops at the
 * first error or at the end of the file, returning what went: the transfer that carries on from
 * there (start) meets the same condition and reports it. Never waits for the socket (libuv made it
 * non-blocking). */
static napi_value send_now(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  int32_t sock_fd, file_fd;
  int64_t offset, length;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 || napi_get_value_int32(env, argv[0], &sock_fd) != napi_ok ||
      napi_get_value_int32(env, argv[1], &file_fd) != napi_ok || napi_get_value_int64(env, argv[2], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[3], &length) != napi_ok || sock_fd < 0 || file_fd < 0 || offset < 0 || length < 0) {
    napi_throw_type_error(env, NULL, "send(socketFd, fileFd, offset, length)");
    return NULL;
  }
  off_t off = (off_t)offset;
  int64_t sent = 0;
  while (sent < length) {
    size_t want = length - sent > (1 << 30) ? (size_t)1 << 30 : (size_t)(length - sent);
    ssize_t n = sendfile(sock_fd, file_fd, &off, want);
    if (n > 0) {
      sent += n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break; /* full (EAGAIN), the file ended, or an error */
  }
  napi_value out;
  napi_create_double(env, (double)sent, &out);
  return out;
}

static napi_value cancel(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  void *data = NULL;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_external(env, argv[0], &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "cancel(handle)");
    return NULL;
  }
  job_t *job = (job_t *)data;
  uint64_t one = 1;
  /* The eventfd lives as long as the handle: no reuse of the number is possible here. */
  ssize_t w = write(job->cancel_fd, &one, sizeof one);
  (void)w;
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"send", NULL, send_now, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start, NULL, NULL, NULL, napi_default, NULL},
      {"cancel", NULL, cancel, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(stowage_sendfile, init)
