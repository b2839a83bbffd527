// Host layer: a small persistent thread pool. run(parts, fn) calls fn(i) for
// i in [0, parts): part 0 on the caller, part i on worker i - 1, and returns
// when all are done. Workers spin briefly for the next job (the parts of one
// forward pass come microseconds apart), then sleep on a condition variable,
// so an idle engine costs no CPU. Python-free; unlike the core it allocates
// and starts threads.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define OFA_POOL_PAUSE() _mm_pause()
#else
#define OFA_POOL_PAUSE() ((void)0)
#endif

namespace ofa_host {

class Pool {
 public:
  // Starts up to `workers` threads (fewer if the OS refuses one: their parts
  // then run on the caller, after its own).
  explicit Pool(int workers) : slots_(workers > 0 ? workers : 0) {
    for (int i = 0; i < (int)slots_.size(); ++i) {
      try {
        threads_.emplace_back([this, i] { loop(slots_[i]); });
      } catch (const std::system_error&) {
        break;
      }
    }
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  int size() const { return (int)threads_.size() + 1; }

  // fn(i) for i in [0, parts); one call at a time (the Runner serialises).
  template <class Fn>
  void run(int parts, Fn& fn) {
    const int on_workers = parts - 1 < (int)threads_.size() ? parts - 1 : (int)threads_.size();
    const auto call = [](void* f, int i) { (*static_cast<Fn*>(f))(i); };
    if (on_workers > 0) {
      for (int w = 0; w < on_workers; ++w) {
        Slot& s = slots_[w];
        s.call = call;
        s.fn = &fn;
        s.part = w + 1;
        s.done.store(false, std::memory_order_relaxed);
      }
      {
        std::lock_guard<std::mutex> lock(mutex_);
        for (int w = 0; w < on_workers; ++w) slots_[w].ticket.fetch_add(1, std::memory_order_release);
      }
      wake_.notify_all();
    }
    if (parts > 0) fn(0);
    for (int i = on_workers + 1; i < parts; ++i) fn(i);  // parts no worker took
    for (int w = 0; w < on_workers; ++w)
      while (!slots_[w].done.load(std::memory_order_acquire)) OFA_POOL_PAUSE();
  }

 private:
  static constexpr int kSpins = 1 << 15;  // about 100 us of polling before sleeping

  // One worker's job: written by the caller before it bumps `ticket`, read by
  // the worker after it sees the bump; the caller waits for `done` before
  // writing the next.
  struct Slot {
    std::atomic<uint64_t> ticket{0};
    std::atomic<bool> done{true};
    void (*call)(void*, int) = nullptr;
    void* fn = nullptr;
    int part = 0;
  };

  void loop(Slot& slot) {
    uint64_t seen = 0;
    for (;;) {
      uint64_t now = slot.ticket.load(std::memory_order_acquire);
      for (int spin = 0; now == seen && spin < kSpins; ++spin) {
        OFA_POOL_PAUSE();
        now = slot.ticket.load(std::memory_order_acquire);
      }
      if (now == seen) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || slot.ticket.load(std::memory_order_acquire) != seen; });
        if (stop_) return;
        now = slot.ticket.load(std::memory_order_acquire);
      }
      seen = now;
      slot.call(slot.fn, slot.part);
      slot.done.store(true, std::memory_order_release);
    }
  }

  std::vector<Slot> slots_;
  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace ofa_host
