#pragma once
// A fixed set of compute threads for the CPU backend. parallel_for splits [0, n) into contiguous
// chunks that the threads claim as they go (a thread may get several; the calling thread works
// too), so a thread the OS has descheduled does not hold up the others. Not reentrant: one
// parallel_for at a time (the engine is single-threaded from its caller's point of view).
// Waiting threads spin for a moment before they sleep (thread_pool.cpp says why).
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace moescope {

// Physical cores this process may run on (hyperthread siblings counted once): the default
// number of compute threads.
int physical_cores();

class ThreadPool {
public:
  explicit ThreadPool(int threads = 0);  // 0: one per physical core (physical_cores())
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return int(workers_.size()) + 1; }
  // fn(begin, end, thread_index) over disjoint ranges covering [0, n). fn is called through a
  // plain pointer (no std::function, so no allocation per call on the decode hot path).
  template <class F>
  void parallel_for(int n, F&& fn) {
    using Fn = std::remove_reference_t<F>;
    run(n, [](void* ctx, int b, int e, int t) { (*static_cast<Fn*>(ctx))(b, e, t); },
        const_cast<void*>(static_cast<const void*>(&fn)));
  }

private:
  using Trampoline = void (*)(void*, int, int, int);
  void run(int n, Trampoline fn, void* ctx);
  void worker(int index);

  void work(uint32_t generation, int thread);

  std::vector<std::thread> workers_;
  std::mutex mu_;  // only for sleeping and waking; the job itself is published through atomics
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  // The current job, written by run() before next_ is released.
  std::atomic<Trampoline> job_fn_{nullptr};
  std::atomic<void*> job_ctx_{nullptr};
  std::atomic<int> job_n_{0};
  std::atomic<int> job_chunk_{1};
  std::atomic<uint64_t> next_{0};  // (generation << 32) | next unclaimed index
  std::atomic<int> done_{0};       // items finished in the current job
  std::atomic<bool> stop_{false};
};

}  // namespace moescope
