/*
 * glibc malloc settings for Node, which has no way to reach mallopt(3) or malloc_trim(3).
 *
 * Why (issue 10, idle RSS): glibc raises its mmap threshold to the size of the largest mmapped
 * block freed so far (up to 32 MiB). scrypt (password hashing, 16 MiB per hash at N=16384, r=8)
 * frees one such block, so every later hash takes its 16 MiB from the arena of the libuv thread
 * that runs it, and the arena keeps it: 16 MiB more resident per pool thread, for good. A fixed
 * threshold keeps blocks that large in mmap, returned on free. malloc_trim gives back the free
 * pages start-up left in the arenas.
 *
 * JavaScript API (src/malloc-native.ts):
 *   setThresholds(mmapBytes, trimBytes) -> true when both were set (false when not glibc)
 *   trim() -> true when memory was returned to the system
 */
#include <node_api.h>
#include <stdbool.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

static napi_value boolean(napi_env env, bool b) {
  napi_value r;
  napi_get_boolean(env, b, &r);
  return r;
}

static napi_value set_thresholds(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t mmap_bytes = 0, trim_bytes = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_value_int32(env, argv[0], &mmap_bytes) != napi_ok ||
      napi_get_value_int32(env, argv[1], &trim_bytes) != napi_ok || mmap_bytes <= 0 || trim_bytes <= 0) {
    napi_throw_type_error(env, NULL, "setThresholds(mmapBytes, trimBytes)");
    return NULL;
  }
#if defined(__GLIBC__)
  return boolean(env, mallopt(M_MMAP_THRESHOLD, mmap_bytes) == 1 && mallopt(M_TRIM_THRESHOLD, trim_bytes) == 1);
#else
  return boolean(env, false);
#endif
}

static napi_value trim(napi_env env, napi_callback_info info) {
  (void)info;
#if defined(__GLIBC__)
  return boolean(env, malloc_trim(0) == 1);
#else
  return boolean(env, false);
#endif
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"setThresholds", NULL, set_thresholds, NULL, NULL, NULL, napi_default, NULL},
      {"trim", NULL, trim, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 2, props);
  return exports;
}

NAPI_MODULE(stowage_malloc, init)
