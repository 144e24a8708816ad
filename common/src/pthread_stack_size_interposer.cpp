// pthread_attr_setstacksize, interposed so that a thread given an explicit stack size gets that
// much stack *in addition to* the static thread-local storage glibc carves out of it.
//
// Why: glibc places the static TLS of the program and of every library loaded at start (and
// the thread descriptor) at the top of each new thread's stack, out of the size the caller
// asked for (glibc bug 11787). A library that picks a small fixed stack therefore gets less
// than it asked for, or no thread at all once the TLS is larger than the stack. Debian 12's
// libcivetweb (the metrics endpoint's HTTP server) starts its threads with 100 KiB; in the GPU
// build cuBLAS's static TLS (libcublasLt 92 KiB, libcublas 12 KiB) raises glibc's minimum for a
// thread (__pthread_get_minstack: a page, PTHREAD_STACK_MIN and the TLS) from 24 KiB to
// 140 KiB, more than civetweb's whole stack, so pthread_create failed and `probity serve` or
// `probity shard` with "metrics" exited at start ("Cannot create first worker thread"). In the
// CPU build the TLS fits but still takes its share of civetweb's stack. Rust's std and the JVM
// work around the same bug the same way, adding __pthread_get_minstack(attr) to every stack
// size they request; doing it here covers libraries we cannot change, such as civetweb.
//
// It is linked (as object code, see common/CMakeLists.txt) into every program that links the
// service library, in every build: it only ever enlarges explicitly requested stacks, by
// glibc's minimum, and threads created with glibc's default stack size are not affected. Where
// __pthread_get_minstack is absent (not glibc), the size is passed on unchanged.
#include <dlfcn.h>
#include <pthread.h>

#include <cerrno>
#include <cstddef>

namespace {

using SetStackSize = int (*)(pthread_attr_t*, size_t);
using GetMinStack = size_t (*)(const pthread_attr_t*);

struct StackSizeFunctions {
  SetStackSize set_stack_size = nullptr;  // the C library's pthread_attr_setstacksize
  GetMinStack min_stack = nullptr;        // glibc's __pthread_get_minstack, if there is one
};

const StackSizeFunctions& Functions() {
  static const StackSizeFunctions functions = [] {
    StackSizeFunctions found;
    found.set_stack_size =
        reinterpret_cast<SetStackSize>(dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
    found.min_stack = reinterpret_cast<GetMinStack>(dlsym(RTLD_DEFAULT, "__pthread_get_minstack"));
    return found;
  }();
  return functions;
}

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attr, size_t stack_size) noexcept {
  const StackSizeFunctions& functions = Functions();
  if (functions.set_stack_size == nullptr) return ENOSYS;  // a C library without one
  size_t size = stack_size;
  // A size below the minimum stays an error (EINVAL) as POSIX has it, rather than being made
  // valid by what is added.
  if (functions.min_stack != nullptr && stack_size >= static_cast<size_t>(PTHREAD_STACK_MIN)) {
    const size_t reserved = functions.min_stack(attr);
    if (size <= static_cast<size_t>(-1) - reserved) size += reserved;
  }
  return functions.set_stack_size(attr, size);
}
