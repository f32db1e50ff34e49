#include "moescope/thread_pool.h"

#include <algorithm>

namespace moescope {

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
inline void range_of(int n, int parts, int i, int& begin, int& end) {
  const int base = n / parts, extra = n % parts;
  begin = i * base + std::min(i, extra);
  end = begin + base + (i < extra ? 1 : 0);
}
}  // namespace

void ThreadPool::run(int n, Trampoline fn, void* ctx) {
  if (n <= 0) return;
  const int parts = std::min(n, size());
  if (parts == 1) {
    fn(ctx, 0, n, 0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = fn;
    job_ctx_ = ctx;
    job_n_ = n;
    pending_ = int(workers_.size());
    ++generation_;
  }
  wake_.notify_all();
  int b, e;
  range_of(n, size(), 0, b, e);
  if (b < e) fn(ctx, b, e, 0);
  std::unique_lock<std::mutex> lock(mu_);
  done_cv_.wait(lock, [this] { return pending_ == 0; });
  job_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint64_t seen = 0;
  for (;;) {
    Trampoline job;
    void* ctx;
    int n;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
      ctx = job_ctx_;
      n = job_n_;
    }
    int b, e;
    range_of(n, size(), index, b, e);
    if (b < e) job(ctx, b, e, index);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_cv_.notify_one();
    }
  }
}

}  // namespace moescope
