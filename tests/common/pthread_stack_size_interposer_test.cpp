// The pthread_attr_setstacksize interposer (common/src/pthread_stack_size_interposer.cpp): a
// stack size a library asks for is what the thread gets on top of glibc's static TLS, so that
// civetweb's 100 KiB threads start even where cuBLAS's TLS alone is larger than that.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <pthread.h>

#include <cerrno>
#include <cstddef>

namespace probity::common {
namespace {

using GetMinStack = size_t (*)(const pthread_attr_t*);

constexpr size_t kCivetwebStackSize = 100 * 1024;  // what Debian's libcivetweb asks for

void* ReturnArgument(void* argument) { return argument; }

TEST(PthreadStackSizeInterposerTest, RequestedSizeComesOnTopOfTheStaticTlsMinimum) {
  const auto min_stack =
      reinterpret_cast<GetMinStack>(dlsym(RTLD_DEFAULT, "__pthread_get_minstack"));
  if (min_stack == nullptr) GTEST_SKIP() << "no __pthread_get_minstack: not glibc";
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  const size_t reserved = min_stack(&attr);
  EXPECT_GT(reserved, 0u);
  ASSERT_EQ(pthread_attr_setstacksize(&attr, kCivetwebStackSize), 0);
  size_t stack_size = 0;
  ASSERT_EQ(pthread_attr_getstacksize(&attr, &stack_size), 0);
  EXPECT_GE(stack_size, kCivetwebStackSize + reserved);

  // And a thread started with it runs.
  int marker = 0;
  pthread_t thread;
  ASSERT_EQ(pthread_create(&thread, &attr, ReturnArgument, &marker), 0);
  void* returned = nullptr;
  ASSERT_EQ(pthread_join(thread, &returned), 0);
  EXPECT_EQ(returned, &marker);
  ASSERT_EQ(pthread_attr_destroy(&attr), 0);
}

TEST(PthreadStackSizeInterposerTest, SizeBelowTheMinimumIsStillRefused) {
  pthread_attr_t attr;
  ASSERT_EQ(pthread_attr_init(&attr), 0);
  size_t before = 0;
  ASSERT_EQ(pthread_attr_getstacksize(&attr, &before), 0);
  // Below PTHREAD_STACK_MIN is an error, which the interposer must not hide by adding the TLS
  // minimum to it.
  EXPECT_EQ(pthread_attr_setstacksize(&attr, 1), EINVAL);
  size_t after = 0;
  ASSERT_EQ(pthread_attr_getstacksize(&attr, &after), 0);
  EXPECT_EQ(after, before);
  ASSERT_EQ(pthread_attr_destroy(&attr), 0);
}

}  // namespace
}  // namespace probity::common
