#pragma once
// A fixed set of compute threads for the CPU backend. parallel_for splits [0, n) into one
// contiguous range per thread; the calling thread takes a share too. Not reentrant: one
// parallel_for at a time (the engine is single-threaded from its caller's point of view).
#include <atomic>
#include <condition_variable>
#include <type_traits>
#include <mutex>
#include <thread>
#include <vector>

namespace moescope {

class ThreadPool {
public:
  explicit ThreadPool(int threads = 0);  // 0: one per hardware thread
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

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  Trampoline job_ = nullptr;
  void* job_ctx_ = nullptr;
  int job_n_ = 0;
  uint64_t generation_ = 0;
  int pending_ = 0;
  bool stop_ = false;
};

}  // namespace moescope
