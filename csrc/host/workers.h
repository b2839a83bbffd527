// Host layer: run `work(w)` for w in [0, n) on up to n threads, the caller's
// thread taking w = 0. Python-free, shared by the fp32 and int8 bindings.
#pragma once
#include <system_error>
#include <thread>
#include <vector>

namespace ofa_host {

// If the OS refuses a thread (std::system_error from std::thread: EAGAIN
// under a thread or memory limit), the chunks that got no thread run on the
// caller's thread after its own: same results, no std::terminate. Returns the
// number of threads that did start, besides the caller's.
template <class Work>
int run_workers(int n, Work&& work) {
  std::vector<std::thread> pool;
  pool.reserve(n > 1 ? n - 1 : 0);
  int started = 1;
  for (; started < n; ++started) {
    try {
      pool.emplace_back(work, started);
    } catch (const std::system_error&) {
      break;
    }
  }
  work(0);
  for (int w = started; w < n; ++w) work(w);
  for (auto& t : pool) t.join();
  return started - 1;
}

}  // namespace ofa_host
