#include "moescope/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace moescope {

namespace {

// How long a thread spins before it sleeps on a condition variable. A decode step of a small
// model is a few hundred parallel_for calls of some microseconds each; parking and waking a
// thread through the kernel costs about as much as the work (more in a virtual machine, where an
// idle vCPU is halted), so waiting threads first spin for a short while.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Spins until ready() or kSpin has passed; true when ready.
template <class Ready>
bool spin_until(Ready&& ready) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (;;) {
    for (int i = 0; i < 32; ++i) {
      if (ready()) return true;
      cpu_relax();
    }
    if (std::chrono::steady_clock::now() >= until) return ready();
  }
}

constexpr uint64_t pack(uint32_t generation, uint32_t next) { return (uint64_t(generation) << 32) | next; }
constexpr uint32_t generation_of(uint64_t v) { return uint32_t(v >> 32); }
constexpr uint32_t next_of(uint64_t v) { return uint32_t(v); }
constexpr uint32_t kClosed = 0xFFFFFFFFu;  // next index of a finished job

}  // namespace

int physical_cores() {
  static const int n = [] {
    unsigned fallback = std::max(1u, std::thread::hardware_concurrency());
#if defined(__linux__)
    // The cores (package, core id) of the CPUs this process may run on: a hyperthread sibling
    // shares its core's FMA units and caches, so a second compute thread on it only contends.
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return int(fallback);
    std::set<std::pair<int, int>> cores;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (!CPU_ISSET(cpu, &allowed)) continue;
      const std::string dir = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
      std::ifstream core(dir + "core_id"), package(dir + "physical_package_id");
      int c = -1, p = -1;
      if (!(core >> c) || !(package >> p)) return std::min(int(fallback), CPU_COUNT(&allowed));
      cores.insert({p, c});
    }
    if (!cores.empty()) return int(cores.size());
#endif
    return int(fallback);
  }();
  return n;
}

ThreadPool::ThreadPool(int threads) {
  if (threads <= 0) threads = physical_cores();
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims and runs chunks of job `generation` until none is left. A chunk is claimed by one
// compare-exchange on (generation, next index), so a thread that is late (still on an older
// generation) fails it and never runs a newer job with stale parameters. The job's parameters are
// read between the load and the compare-exchange, seqlock-style: run() closes the finished job
// (next index = kClosed) before it writes new parameters, so parameters read from a newer job
// always make the compare-exchange fail.
void ThreadPool::work(uint32_t generation, int thread) {
  uint64_t cur = next_.load(std::memory_order_acquire);
  for (;;) {
    if (generation_of(cur) != generation || next_of(cur) == kClosed) return;
    const Trampoline fn = job_fn_.load(std::memory_order_relaxed);
    void* const ctx = job_ctx_.load(std::memory_order_relaxed);
    const int n = job_n_.load(std::memory_order_relaxed), chunk = job_chunk_.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    const int b = int(next_of(cur));
    if (b >= n) return;
    const int e = std::min(n, b + chunk);
    if (!next_.compare_exchange_weak(cur, pack(generation, uint32_t(e)), std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      continue;
    fn(ctx, b, e, thread);
    if (done_.fetch_add(e - b, std::memory_order_acq_rel) + (e - b) == n) {
      // Taking the mutex orders this with a caller that checked done_ and is about to sleep.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_one();
    }
    cur = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::run(int n, Trampoline fn, void* ctx) {
  if (n <= 0) return;
  if (n == 1 || workers_.empty()) {
    fn(ctx, 0, n, 0);
    return;
  }
  // Chunks small enough that a thread the OS has descheduled holds up little work (the others
  // take the rest), large enough that claiming them costs nothing next to the work.
  const int chunk = std::max(1, n / (4 * size()));
  const uint32_t generation = generation_of(next_.load(std::memory_order_relaxed)) + 1;
  next_.store(pack(generation - 1, kClosed), std::memory_order_relaxed);  // the previous job is over
  std::atomic_thread_fence(std::memory_order_release);
  job_fn_.store(fn, std::memory_order_relaxed);
  job_ctx_.store(ctx, std::memory_order_relaxed);
  job_n_.store(n, std::memory_order_relaxed);
  job_chunk_.store(chunk, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  {
    // Published under the mutex, so a worker about to sleep either sees the job or is woken.
    std::lock_guard<std::mutex> lock(mu_);
    next_.store(pack(generation, 0), std::memory_order_release);
  }
  wake_.notify_all();
  work(generation, 0);
  auto finished = [&] { return done_.load(std::memory_order_acquire) == n; };
  if (!spin_until(finished)) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, finished);
  }
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  auto ready = [&] {
    return stop_.load(std::memory_order_acquire) || generation_of(next_.load(std::memory_order_acquire)) != seen;
  };
  for (;;) {
    if (!spin_until(ready)) {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, ready);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = generation_of(next_.load(std::memory_order_acquire));
    work(seen, index);
  }
}

}  // namespace moescope
