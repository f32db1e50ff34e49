// Routing dumps opened lazily and read into load-balance statistics (moescope/routing_dump.h).
#include "moescope/routing_dump.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>
#include <thread>

#include "checkpoint/mapped_file.h"
#include "checkpoint/safetensors_header.h"
#include "moescope/error.h"
#include "moescope/npy.h"

namespace moescope {

using remote::TraceShape;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kMaxExpertId = 0xFFFE;  // the trace keeps 16-bit ids, 0xFFFF = none

std::string thousands(int64_t n) {
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string s = n < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) s += ',';
    s += digits[i];
  }
  return s;
}

std::string dims_string(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// Gives back the resident pages wholly inside [begin, end) of a read-only file mapping: a
// streamed pass keeps its memory small however large the file (pages touched again are read
// back from the page cache).
void drop_pages(const uint8_t* begin, const uint8_t* end) {
  static const uintptr_t page = uintptr_t(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t e = reinterpret_cast<uintptr_t>(end) / page * page;
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
}

// An integer array in a mapping: little-endian, C order, possibly misaligned.
struct IntArray {
  const uint8_t* data = nullptr;
  int bytes = 0;
  bool is_signed = true;
  std::vector<int64_t> dims;
  size_t count() const {
    size_t n = 1;
    for (int64_t d : dims) n *= size_t(d);
    return n;
  }
  int64_t at(size_t i) const {
    const uint8_t* p = data + i * size_t(bytes);
    switch (bytes * (is_signed ? 1 : -1)) {
      case 1: { int8_t v; std::memcpy(&v, p, 1); return v; }
      case -1: return p[0];
      case 2: { int16_t v; std::memcpy(&v, p, 2); return v; }
      case -2: { uint16_t v; std::memcpy(&v, p, 2); return v; }
      case 4: { int32_t v; std::memcpy(&v, p, 4); return v; }
      case -4: { uint32_t v; std::memcpy(&v, p, 4); return v; }
      default: { int64_t v; std::memcpy(&v, p, 8); return v; }
    }
  }
};

enum class FloatType { F32, F16, BF16 };

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16, exp = (h >> 10) & 0x1F, man = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal
      float f = std::ldexp(float(man), -24);
      std::memcpy(&bits, &f, 4);
      bits |= sign;
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

struct FloatArray {
  const uint8_t* data = nullptr;
  FloatType type = FloatType::F32;
  float at(size_t i) const {
    if (type == FloatType::F32) {
      float f;
      std::memcpy(&f, data + 4 * i, 4);
      return f;
    }
    uint16_t h;
    std::memcpy(&h, data + 2 * i, 2);
    if (type == FloatType::F16) return half_to_float(h);
    const uint32_t bits = uint32_t(h) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};

int workers_for(int64_t units, int64_t min_per_worker) {
  int n = int(std::thread::hardware_concurrency());
  if (const char* env = std::getenv("MOESCOPE_DUMP_THREADS"); env && *env) n = std::atoi(env);
  n = std::clamp(n, 1, 16);
  return int(std::clamp<int64_t>(units / std::max<int64_t>(min_per_worker, 1), 1, n));
}

// Per-worker expert counts [moe_layers][stride]. While the model's expert count is unknown the
// stride grows with the largest id seen (up to kMaxExpertId + 1).
struct Counts {
  int n_moe = 0;
  int fixed = 0;  // the model's expert count, 0 = unknown
  int stride = 0;
  std::vector<int64_t> load;
  int64_t tokens = 0;

  Counts(int moe, int n_experts) : n_moe(moe), fixed(n_experts), stride(n_experts > 0 ? n_experts : 256) {
    load.assign(size_t(n_moe) * size_t(stride), 0);
  }
  // Makes room for id e (>= stride); false when e can never fit.
  bool grow(int64_t e) {
    if (fixed > 0 || e > kMaxExpertId) return false;
    int s = stride;
    while (s <= e) s *= 2;
    s = int(std::min<int64_t>(s, kMaxExpertId + 1));
    std::vector<int64_t> next(size_t(n_moe) * size_t(s), 0);
    for (int m = 0; m < n_moe; ++m)
      std::copy_n(load.begin() + ptrdiff_t(m) * stride, stride, next.begin() + ptrdiff_t(m) * s);
    load.swap(next);
    stride = s;
    return true;
  }
  void count(int m, int64_t e) {  // the slow path's single id
    ++load[size_t(m) * size_t(stride) + size_t(e)];
  }
  int64_t top() const {  // the largest id counted, -1 if none
    int64_t t = -1;
    for (int m = 0; m < n_moe; ++m)
      for (int e = stride - 1; e > t; --e)
        if (load[size_t(m) * size_t(stride) + size_t(e)]) {
          t = e;
          break;
        }
    return t;
  }
};

// Merges the workers' counts into one RoutingStats of `n_experts` experts.
RoutingStats merge_counts(const std::vector<Counts>& parts, int n_experts, const std::vector<int>& moe_layers) {
  RoutingStats stats(n_experts, moe_layers);
  std::vector<int64_t> flat(moe_layers.size() * size_t(n_experts));
  for (const Counts& c : parts) {
    std::fill(flat.begin(), flat.end(), 0);
    for (int m = 0; m < c.n_moe; ++m)
      for (int e = 0; e < std::min(c.stride, n_experts); ++e)
        flat[size_t(m) * size_t(n_experts) + size_t(e)] = c.load[size_t(m) * size_t(c.stride) + size_t(e)];
    stats.add_counts(flat.data(), c.tokens);
  }
  return stats;
}

// Runs work(worker, first, last) over [0, units) split into contiguous ranges, one thread each,
// and reports progress from the calling thread. work() reads in chunks and calls step(done)
// after each; step() answers false when the worker should stop (cancelled, or an error was met
// before its position). The error met first in the file wins; cancel is Error("cancelled").
class Parallel {
public:
  Parallel(int64_t units, int workers, const DumpProgress& p) : units_(units), n_(workers), p_(p) {}

  template <class Work>
  void run(Work&& work) {
    std::vector<std::thread> threads;
    std::vector<std::exception_ptr> errors(static_cast<size_t>(n_));
    for (int w = 0; w < n_; ++w) {
      const int64_t first = units_ * w / n_, last = units_ * (w + 1) / n_;
      auto body = [&, w, first, last] {
        try {
          work(w, first, last);
        } catch (...) {
          errors[size_t(w)] = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mu_);
        ++finished_;
        cv_.notify_all();
      };
      try {
        threads.emplace_back(body);
      } catch (...) {  // no thread to be had: stop the ones started before reporting it
        stop_.store(true);
        for (auto& t : threads) t.join();
        throw Error("routing dump statistics: cannot start a worker thread");
      }
    }
    std::exception_ptr progress_error;
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (finished_ < n_) {
        cv_.wait_for(lock, std::chrono::milliseconds(100), [&] { return finished_ == n_; });
        if (finished_ < n_ && p_.progress && !progress_error) {
          lock.unlock();
          try {
            p_.progress(done_.load(), units_);
          } catch (...) {
            progress_error = std::current_exception();
            stop_.store(true);
          }
          lock.lock();
        }
      }
    }
    for (auto& t : threads) t.join();
    if (progress_error) std::rethrow_exception(progress_error);
    // The error at the lowest position: workers hold ascending ranges, and each stops at its first.
    for (int w = 0; w < n_; ++w)
      if (errors[size_t(w)]) std::rethrow_exception(errors[size_t(w)]);
    if (p_.cancel && p_.cancel->load()) throw Error("cancelled");
    if (p_.progress) p_.progress(units_, units_);
  }

  // After a chunk [.., pos) of `n` units: false when the worker should stop.
  bool step(int64_t n, int64_t pos) {
    done_.fetch_add(n);
    return !(stop_.load() || (p_.cancel && p_.cancel->load()) || pos >= first_error_.load());
  }
  // A worker met an error at `pos`: workers past it stop.
  void failed(int64_t pos) {
    int64_t cur = first_error_.load();
    while (pos < cur && !first_error_.compare_exchange_weak(cur, pos)) {
    }
  }
private:
  int64_t units_;
  int n_;
  const DumpProgress& p_;
  std::atomic<int64_t> done_{0};
  std::atomic<int64_t> first_error_{std::numeric_limits<int64_t>::max()};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int finished_ = 0;
};

}  // namespace

// ---- the sources ------------------------------------------------------------------------------

class RoutingDump::Source {
public:
  virtual ~Source() = default;
  virtual int64_t sequences() const = 0;
  virtual RoutingTrace sequence(int64_t index) const = 0;
  virtual std::string label(int64_t index) const = 0;
  virtual RoutingStats stats(const DumpProgress& p) const = 0;

  std::string format;
  std::string name;  // the file's name, for messages
  TraceShape shape;

protected:
  void check_index(int64_t index) const {
    if (index < 0 || index >= sequences())
      throw Error(name + ": no sequence " + std::to_string(index) + " (the dump has " + thousands(sequences()) + ")");
  }
};

namespace {

// Every choice of a response; the prompt rows (shared by the choices) once.
template <class F>
void each_choice_trace(const remote::ResponseRouting& r, const TraceShape& shape, F&& f) {
  if (r.choices.empty()) {
    f(remote::to_trace(r, 0, shape), size_t(0));
    return;
  }
  bool first = true;
  for (const auto& c : r.choices) {
    const RoutingTrace t = remote::to_trace(r, c.index, shape);
    f(t, first ? size_t(0) : size_t(r.prompt.n_tokens));
    first = false;
  }
}

int first_choice(const remote::ResponseRouting& r) { return r.choices.empty() ? 0 : r.choices.front().index; }

remote::RoutingGeometry geometry_of(const TraceShape& s) { return {s.n_layers, s.top_k}; }

// Fills what the file tells of the shape: the payload's layer count and top-k, the MoE layers.
void fill_shape(TraceShape& s, int payload_layers, int top_k, const std::vector<int>& moe_layers) {
  if (s.n_layers <= 0) s.n_layers = payload_layers;
  if (s.top_k <= 0) s.top_k = top_k;
  if (s.moe_layers.empty()) s.moe_layers = moe_layers;
}

// ---- one JSON document: a trace, or one response -----------------------------------------------

class JsonSource : public RoutingDump::Source {
public:
  JsonSource(const fs::path& path, const TraceShape& given) {
    format = "trace";
    name = path.filename().string();
    shape = given;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open " + path.string());
    const nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded()) {
      RoutingTrace::load(path);  // its message for invalid JSON
      throw Error(name + ": invalid JSON");
    }
    if (j.is_object() && j.contains("version")) {
      trace_ = RoutingTrace::from_json(j);
      fill_shape(shape, trace_->moe_layers().empty() ? 0 : trace_->moe_layers().back() + 1, trace_->top_k(),
                 trace_->moe_layers());
      if (shape.n_experts <= 0) shape.n_experts = trace_->n_experts();
      return;
    }
    try {
      response_ = remote::parse_response(j, geometry_of(shape));
      const RoutingTrace t = remote::to_trace(*response_, first_choice(*response_), shape);
      fill_shape(shape, shape.n_layers, t.top_k(), t.moe_layers());
    } catch (const Error& e) {
      throw Error(name + ": " + e.what());
    }
  }
  int64_t sequences() const override { return 1; }
  RoutingTrace sequence(int64_t index) const override {
    check_index(index);
    if (trace_) return *trace_;
    try {
      return remote::to_trace(*response_, first_choice(*response_), shape);
    } catch (const Error& e) {
      throw Error(name + ": " + e.what());
    }
  }
  std::string label(int64_t index) const override {
    check_index(index);
    if (trace_) return "trace" + std::string(trace_->model().empty() ? "" : " of " + trace_->model()) + ", " +
                       thousands(int64_t(trace_->size())) + " tokens";
    std::string s = "response";
    if (!response_->id.empty()) s += " (id " + response_->id + ")";
    try {
      s += ", " + thousands(int64_t(sequence(0).size())) + " tokens";
    } catch (const Error&) {
    }
    if (response_->choices.size() > 1) s += ", " + std::to_string(response_->choices.size()) + " choices (the first shown)";
    return s;
  }
  RoutingStats stats(const DumpProgress& p) const override {
    if (p.cancel && p.cancel->load()) throw Error("cancelled");
    RoutingStats out;
    if (trace_) {
      out = RoutingStats::for_trace(*trace_);
      out.add_all(*trace_);
    } else {
      std::optional<RoutingStats> stats;
      try {
        TraceShape sized = shape;
        if (sized.n_experts <= 0)  // one expert count for every choice
          each_choice_trace(*response_, shape,
                            [&](const RoutingTrace& t, size_t) { sized.n_experts = std::max(sized.n_experts, t.n_experts()); });
        each_choice_trace(*response_, sized, [&](const RoutingTrace& t, size_t first) {
          if (!stats) stats.emplace(t.n_experts(), t.moe_layers());
          stats->add(t, first, t.size());
        });
      } catch (const Error& e) {
        throw Error(name + ": " + e.what());
      }
      out = std::move(*stats);
    }
    if (p.progress) p.progress(1, 1);
    return out;
  }

private:
  std::optional<RoutingTrace> trace_;
  std::optional<remote::ResponseRouting> response_;
};

// ---- JSON lines: one response a line, indexed at open -----------------------------------------

class JsonLinesSource : public RoutingDump::Source {
public:
  JsonLinesSource(const fs::path& path, const TraceShape& given) : file_(path) {
    format = "jsonl";
    name = path.filename().string();
    shape = given;
    const char* d = reinterpret_cast<const char*>(file_.data());
    const size_t size = file_.size();
    if (size == 0) throw Error(name + ": empty file");
    ::madvise(const_cast<uint8_t*>(file_.data()), size, MADV_SEQUENTIAL);
    int64_t line_no = 0;
    size_t dropped = 0;
    for (size_t at = 0; at < size;) {
      const char* nl = static_cast<const char*>(std::memchr(d + at, '\n', size - at));
      const size_t end = nl ? size_t(nl - d) : size;
      ++line_no;
      size_t b = at, e = end;
      while (b < e && (d[b] == ' ' || d[b] == '\t' || d[b] == '\r')) ++b;
      while (e > b && (d[e - 1] == ' ' || d[e - 1] == '\t' || d[e - 1] == '\r')) --e;
      if (e > b) {
        // A line must hold one whole JSON document: a line cut short (a file still being
        // written, or truncated) is found here, without parsing.
        if (!((d[b] == '{' && d[e - 1] == '}') || (d[b] == '[' && d[e - 1] == ']')))
          throw Error(name + " line " + std::to_string(line_no) + ": not one whole JSON response (" +
                      (d[b] == '{' || d[b] == '[' ? "cut short?" : "a line must hold one JSON object") + ")");
        lines_.push_back({int64_t(b), int64_t(e - b), line_no});
      }
      at = end + 1;
      if (at - dropped > (size_t(8) << 20) || at >= size) {  // the scan keeps no pages either
        drop_pages(file_.data() + dropped, file_.data() + std::min(at, size));
        dropped = std::min(at, size);
      }
    }
    if (lines_.empty()) throw Error(name + ": no responses");
    // The first response fixes the shape (and its layers are the ones every response must have).
    const remote::ResponseRouting r = parse(0);
    const RoutingTrace t = in_line(0, [&] { return remote::to_trace(r, first_choice(r), shape); });
    int payload_layers = r.prompt.empty() ? 0 : r.prompt.n_layers;
    for (const auto& c : r.choices)
      if (!payload_layers && !c.routed.empty()) payload_layers = c.routed.n_layers;
    fill_shape(shape, payload_layers, t.top_k(), t.moe_layers());
    moe_layers_ = t.moe_layers();
  }

  int64_t sequences() const override { return int64_t(lines_.size()); }

  RoutingTrace sequence(int64_t index) const override {
    check_index(index);
    const remote::ResponseRouting r = parse(size_t(index));
    return in_line(size_t(index), [&] { return remote::to_trace(r, first_choice(r), shape); });
  }

  std::string label(int64_t index) const override {
    check_index(index);
    const Line& l = lines_[size_t(index)];
    std::string s = "response " + std::to_string(index);
    try {
      const remote::ResponseRouting r = parse(size_t(index));
      s += " (" + (r.id.empty() ? "" : "id " + r.id + ", ") + "line " + std::to_string(l.line) + ")";
      s += ", " + thousands(int64_t(remote::to_trace(r, first_choice(r), shape).size())) + " tokens";
      if (r.choices.size() > 1) s += ", " + std::to_string(r.choices.size()) + " choices (the first shown)";
    } catch (const Error&) {
      s += " (line " + std::to_string(l.line) + "): unreadable";
    }
    return s;
  }

  RoutingStats stats(const DumpProgress& p) const override {
    const int64_t n = int64_t(lines_.size());
    const int workers = workers_for(n, 16);
    Parallel par(n, workers, p);
    std::vector<Counts> parts;
    const int n_moe = int(moe_layers_.size());
    for (int w = 0; w < workers; ++w) parts.emplace_back(n_moe, shape.n_experts);
    par.run([&](int w, int64_t first, int64_t last) {
      Counts& c = parts[size_t(w)];
      for (int64_t i = first; i < last; ++i) {
        try {
          const remote::ResponseRouting r = parse(size_t(i));
          in_line(size_t(i), [&] {
            each_choice_trace(r, shape, [&](const RoutingTrace& t, size_t from) {
              if (t.moe_layers() != moe_layers_)
                throw Error("this response's layers differ from the first one's (responses of another model?)");
              for (size_t k = from; k < t.size(); ++k) {
                for (int m = 0; m < n_moe; ++m)
                  for (int s = 0; s < t.top_k(); ++s) {
                    const int e = t.expert(k, m, s);
                    if (e < 0) continue;
                    if (e >= c.stride && !c.grow(e)) throw Error("expert id " + std::to_string(e) + " out of range");
                    c.count(m, e);
                  }
                ++c.tokens;
              }
            });
            return 0;
          });
        } catch (...) {
          par.failed(i);
          throw;
        }
        const uint8_t* line = file_.data() + lines_[size_t(i)].offset;
        drop_pages(line, line + lines_[size_t(i)].length);  // memory: the statistics, not the file
        if (!par.step(1, i + 1)) break;
      }
    });
    int n_experts = shape.n_experts;
    if (n_experts <= 0) {
      int64_t top = -1;
      for (const Counts& c : parts) top = std::max(top, c.top());
      n_experts = int(std::max<int64_t>(top + 1, shape.top_k));
    }
    return merge_counts(parts, n_experts, moe_layers_);
  }

private:
  struct Line {
    int64_t offset, length, line;
  };
  remote::ResponseRouting parse(size_t i) const {
    const Line& l = lines_[i];
    return in_line(i, [&] {
      return remote::parse_response_text(
          std::string_view(reinterpret_cast<const char*>(file_.data()) + l.offset, size_t(l.length)), geometry_of(shape));
    });
  }
  template <class F>
  auto in_line(size_t i, F&& f) const -> decltype(f()) {
    try {
      return f();
    } catch (const Error& e) {
      const std::string prefix = name + " line ";
      if (std::string_view(e.what()).substr(0, prefix.size()) == prefix) throw;
      throw Error(prefix + std::to_string(lines_[i].line) + ": " + e.what());
    }
  }

  MappedFile file_;
  std::vector<Line> lines_;
  std::vector<int> moe_layers_;
};

// ---- arrays: .npy and .safetensors ------------------------------------------------------------

class ArraySource : public RoutingDump::Source {
public:
  // ids (and the optional token ids and weights) set by the subclass, then checked here.
  void init(const TraceShape& given) {
    shape = given;
    const auto& dims = ids_.dims;
    if (dims.size() != 3 && dims.size() != 4)
      throw Error(name + ": expected expert ids [tokens, layers, top_k] or [sequences, tokens, layers, top_k], got " +
                  std::to_string(dims.size()) + " dimensions");
    L_ = int(std::min<int64_t>(dims[dims.size() - 2], 1 << 30));
    K_ = int(std::min<int64_t>(dims.back(), 1 << 30));
    if (L_ <= 0 || K_ <= 0 || L_ > 4096 || K_ > 4096) throw Error(name + ": layers and top_k must be in 1..4096");
    S_ = dims.size() == 4 ? dims[0] : 1;
    T_ = dims.size() == 4 ? dims[1] : dims[0];
    std::vector<int> moe_layers;
    try {
      remote::layer_map(L_, shape, moe_layers, rows_);
    } catch (const Error& e) {
      throw Error(name + ": " + e.what());
    }
    if (shape.top_k > 0 && K_ > shape.top_k)
      throw Error(name + ": " + std::to_string(K_) + " experts a layer; the model selects " + std::to_string(shape.top_k));
    fill_shape(shape, L_, K_, moe_layers);
    moe_layers_ = moe_layers;
    if (tokens_) {
      const std::vector<int64_t> lead(dims.begin(), dims.end() - 2);
      if (tokens_->dims != lead)
        throw Error(token_name_ + " " + dims_string(tokens_->dims) +
                    " must have the shape of the routing's leading dimensions " + dims_string(lead));
    }
  }

  int64_t sequences() const override { return S_; }

  RoutingTrace sequence(int64_t index) const override {
    check_index(index);
    const size_t per = size_t(L_) * size_t(K_), first = size_t(index) * size_t(T_);
    const size_t nm = rows_.size();
    int n_experts = shape.n_experts;
    if (n_experts <= 0) {
      int64_t top = -1;
      for (int64_t t = 0; t < T_; ++t) {
        if (padding(first + size_t(t))) continue;
        for (size_t m = 0; m < nm; ++m)
          for (int k = 0; k < K_; ++k) top = std::max(top, ids_.at((first + size_t(t)) * per + size_t(rows_[m]) * size_t(K_) + size_t(k)));
      }
      if (top > kMaxExpertId) throw Error(name + ": expert id " + std::to_string(top) + " out of range");
      n_experts = int(std::max<int64_t>(top + 1, shape.top_k));
    }
    RoutingTrace trace(shape.model, n_experts, shape.top_k, moe_layers_);
    std::vector<int32_t> row(nm * size_t(K_));
    std::vector<float> w(weights_ ? row.size() : 0);
    for (int64_t t = 0; t < T_; ++t) {
      const size_t at = first + size_t(t);
      if (padding(at)) continue;
      for (size_t m = 0; m < nm; ++m)
        for (int k = 0; k < K_; ++k) {
          const size_t src = at * per + size_t(rows_[m]) * size_t(K_) + size_t(k);
          const int64_t e = ids_.at(src);
          if (e >= n_experts) throw bad_id(e, at);
          row[m * size_t(K_) + size_t(k)] = e < 0 ? -1 : int32_t(e);
          if (weights_) w[m * size_t(K_) + size_t(k)] = weights_->at(src);
        }
      TraceToken tk;
      tk.pos = int32_t(t);
      tk.id = tokens_ ? int32_t(tokens_->at(at)) : 0;
      tk.phase = Phase::Prefill;
      trace.append(tk, row.data(), weights_ ? w.data() : nullptr, K_);
    }
    return trace;
  }

  std::string label(int64_t index) const override {
    check_index(index);
    int64_t n = T_;
    if (tokens_) {
      n = 0;
      for (int64_t t = 0; t < T_; ++t) n += !padding(size_t(index) * size_t(T_) + size_t(t));
    }
    return "sequence " + std::to_string(index) + ", " + thousands(n) + (n == 1 ? " token" : " tokens");
  }

  RoutingStats stats(const DumpProgress& p) const override {
    const int64_t total = S_ * T_;
    const int workers = workers_for(total, 4096);
    Parallel par(total, workers, p);
    std::vector<Counts> parts;
    for (int w = 0; w < workers; ++w) parts.emplace_back(int(rows_.size()), shape.n_experts);
    par.run([&](int w, int64_t first, int64_t last) {
      switch (ids_.bytes * (ids_.is_signed ? 1 : -1)) {
        case 1: count<int8_t>(par, parts[size_t(w)], first, last); break;
        case -1: count<uint8_t>(par, parts[size_t(w)], first, last); break;
        case 2: count<int16_t>(par, parts[size_t(w)], first, last); break;
        case -2: count<uint16_t>(par, parts[size_t(w)], first, last); break;
        case 4: count<int32_t>(par, parts[size_t(w)], first, last); break;
        case -4: count<uint32_t>(par, parts[size_t(w)], first, last); break;
        case 8: count<int64_t>(par, parts[size_t(w)], first, last); break;
        default: count<uint64_t>(par, parts[size_t(w)], first, last); break;
      }
    });
    int n_experts = shape.n_experts;
    if (n_experts <= 0) {
      int64_t top = -1;
      for (const Counts& c : parts) top = std::max(top, c.top());
      n_experts = int(std::max<int64_t>(top + 1, K_));
    }
    return merge_counts(parts, n_experts, moe_layers_);
  }

protected:
  IntArray ids_;
  std::optional<IntArray> tokens_;
  std::optional<FloatArray> weights_;
  std::string token_name_;  // "FILE: token ids" / "FILE: tensor 'token_ids'", for messages

private:
  bool padding(size_t t) const { return tokens_ && tokens_->at(t) < 0; }

  Error bad_id(int64_t e, size_t flat_token) const {
    const std::string where = S_ > 1 || ids_.dims.size() == 4
                                  ? "sequence " + std::to_string(flat_token / size_t(T_)) + ", token " +
                                        std::to_string(flat_token % size_t(T_))
                                  : "token " + std::to_string(flat_token);
    if (shape.n_experts <= 0) return Error(name + ": expert id " + std::to_string(e) + " (" + where + ") out of range");
    return Error(name + ": expert id " + std::to_string(e) + " (" + where + ") is not below the model's " +
                 std::to_string(shape.n_experts) + " experts");
  }

  // Counts tokens [first, last) (flat over sequences) into c, in chunks; gives back the pages read.
  template <class T>
  void count(Parallel& par, Counts& c, int64_t first, int64_t last) const {
    const size_t per = size_t(L_) * size_t(K_);
    const int nm = int(rows_.size());
    const int* const rows = rows_.data();
    const int K = K_;
    const uint8_t* base = ids_.data;
    constexpr int64_t kChunk = 4096;
    const uint8_t* released = base + size_t(first) * per * sizeof(T);
    const uint8_t* released_tok = tokens_ ? tokens_->data + size_t(first) * size_t(tokens_->bytes) : nullptr;
    for (int64_t c0 = first; c0 < last; c0 += kChunk) {
      const int64_t c1 = std::min(last, c0 + kChunk);
      int64_t tokens = 0;
      for (int64_t t = c0; t < c1; ++t) {
        if (padding(size_t(t))) continue;
        const uint8_t* row = base + size_t(t) * per * sizeof(T);
        int m = 0, k = 0;
        for (;;) {
          // The inner loop: each MoE layer's K ids into that layer's counts.
          int64_t* const load = c.load.data();
          const size_t stride = size_t(c.stride);
          bool slow = false;
          for (; m < nm; ++m, k = 0) {
            const uint8_t* r = row + size_t(rows[m]) * size_t(K) * sizeof(T);
            int64_t* cm = load + size_t(m) * stride;
            for (; k < K; ++k) {
              T v;
              std::memcpy(&v, r + size_t(k) * sizeof(T), sizeof(T));
              const int64_t e = int64_t(v);
              if (uint64_t(e) < stride) {
                ++cm[e];
              } else if (e >= 0) {
                slow = true;
                break;
              }
            }
            if (slow) break;
          }
          if (!slow) break;
          T v;
          std::memcpy(&v, row + (size_t(rows[m]) * size_t(K) + size_t(k)) * sizeof(T), sizeof(T));
          const int64_t e = int64_t(v);
          if (!c.grow(e)) {
            par.failed(t);
            throw bad_id(e, size_t(t));
          }
          // resumes at the same id with the grown counts
        }
        ++tokens;
      }
      c.tokens += tokens;
      const uint8_t* done = base + size_t(c1) * per * sizeof(T);
      drop_pages(released, done);
      released = done;
      if (tokens_) {
        const uint8_t* done_tok = tokens_->data + size_t(c1) * size_t(tokens_->bytes);
        drop_pages(released_tok, done_tok);
        released_tok = done_tok;
      }
      if (!par.step(c1 - c0, c1)) break;
    }
  }

  int L_ = 0, K_ = 0;
  int64_t S_ = 0, T_ = 0;
  std::vector<int> rows_, moe_layers_;
};

IntArray int_array_of(const MappedNpy& a) {
  IntArray out;
  out.data = a.data();
  out.bytes = a.element_bytes();
  out.is_signed = a.is_signed();
  out.dims = a.shape();
  return out;
}

class NpySource : public ArraySource {
public:
  NpySource(const fs::path& path, const TraceShape& given, const fs::path& token_ids) : ids_file_(path) {
    format = "npy";
    name = path.filename().string();
    ids_ = int_array_of(ids_file_);
    if (!token_ids.empty()) {
      tokens_file_.emplace(token_ids);
      tokens_ = int_array_of(*tokens_file_);
      token_name_ = token_ids.filename().string() + ": token ids";
    }
    init(given);
  }

private:
  MappedNpy ids_file_;
  std::optional<MappedNpy> tokens_file_;
};

// The bytes of one element of every dtype the safetensors format names (the ones a dump uses are
// checked where they are bound).
size_t safetensors_element(const std::string& dtype, const std::string& where) {
  static const std::pair<const char*, size_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"I16", 2}, {"U16", 2}, {"F16", 2},
      {"BF16", 2}, {"I32", 4}, {"U32", 4}, {"F32", 4}, {"I64", 8}, {"U64", 8}, {"F64", 8}};
  for (const auto& [n, s] : kSizes)
    if (dtype == n) return s;
  throw Error(where + ": dtype " + dtype + " is not a safetensors dtype");
}

bool integer_dtype(const std::string& d) {
  return d == "U8" || d == "I8" || d == "I16" || d == "U16" || d == "I32" || d == "U32" || d == "I64" || d == "U64";
}

IntArray int_array_of(const SafetensorsEntry& e) {
  IntArray out;
  out.data = e.data;
  out.bytes = int(e.dtype[1] == '8' ? 1 : e.dtype[1] == '1' ? 2 : e.dtype[1] == '3' ? 4 : 8);
  out.is_signed = e.dtype[0] == 'I';
  out.dims = e.shape;
  return out;
}

class SafetensorsSource : public ArraySource {
public:
  SafetensorsSource(const fs::path& path, const TraceShape& given, const fs::path& token_ids) : file_(path) {
    format = "safetensors";
    name = path.filename().string();
    const std::vector<SafetensorsEntry> entries = read_safetensors_header(file_, safetensors_element);
    auto find = [&](std::initializer_list<const char*> names) -> const SafetensorsEntry* {
      for (const char* n : names)
        for (const auto& e : entries)
          if (e.name == n) return &e;
      return nullptr;
    };
    const SafetensorsEntry* ids = find({"routed_experts"});
    if (!ids) {
      std::vector<const SafetensorsEntry*> candidates;
      for (const auto& e : entries)
        if (integer_dtype(e.dtype) && (e.shape.size() == 3 || e.shape.size() == 4)) candidates.push_back(&e);
      if (candidates.size() > 1) {
        std::string names;
        for (const auto* c : candidates) names += (names.empty() ? "'" : ", '") + c->name + "'";
        throw Error(name + ": several integer tensors of rank 3 or 4 (" + names +
                    "); name the expert ids 'routed_experts'");
      }
      if (candidates.empty())
        throw Error(name + ": no expert ids (an integer tensor 'routed_experts' [tokens, layers, top_k] or "
                           "[sequences, tokens, layers, top_k])");
      ids = candidates.front();
    }
    if (!integer_dtype(ids->dtype))
      throw Error(name + ": tensor '" + ids->name + "' has dtype " + ids->dtype +
                  "; expert ids must be integers (I16, I32, I64, U8, ...)");
    ids_ = int_array_of(*ids);
    if (!token_ids.empty()) {
      tokens_file_.emplace(token_ids);
      tokens_ = int_array_of(*tokens_file_);
      token_name_ = token_ids.filename().string() + ": token ids";
    } else if (const SafetensorsEntry* t = find({"token_ids"})) {
      if (!integer_dtype(t->dtype))
        throw Error(name + ": tensor 'token_ids' has dtype " + t->dtype + "; token ids must be integers (I32, I64, ...)");
      tokens_ = int_array_of(*t);
      token_name_ = name + ": tensor 'token_ids'";
    }
    if (const SafetensorsEntry* w = find({"routed_expert_weights", "weights"})) {
      FloatArray f;
      f.data = w->data;
      if (w->dtype == "F32") f.type = FloatType::F32;
      else if (w->dtype == "F16") f.type = FloatType::F16;
      else if (w->dtype == "BF16") f.type = FloatType::BF16;
      else throw Error(name + ": tensor '" + w->name + "' has dtype " + w->dtype + "; weights must be F32, F16 or BF16");
      if (w->shape != ids->shape)
        throw Error(name + ": tensor '" + w->name + "' " + dims_string(w->shape) + " must have the expert ids' shape " +
                    dims_string(ids->shape));
      weights_ = f;
    }
    init(given);
    ::madvise(const_cast<uint8_t*>(file_.data()), file_.size(), MADV_SEQUENTIAL);
  }

private:
  MappedFile file_;
  std::optional<MappedNpy> tokens_file_;
};

enum class Kind { Json, JsonLines, Npy, Safetensors };

Kind kind_of(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".jsonl" || ext == ".ndjson") return Kind::JsonLines;
  if (ext == ".npy") return Kind::Npy;
  if (ext == ".safetensors") return Kind::Safetensors;
  if (ext == ".json") return Kind::Json;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string());
  char c = 0;
  in.get(c);
  if (c == '\x93') return Kind::Npy;
  std::string line;
  std::getline(in, line);
  std::string rest;
  // one JSON document per line or one document over many lines: a second line that opens an object
  if (std::getline(in, rest) && !rest.empty() && rest[0] == '{' && !line.empty() && line.back() == '}') return Kind::JsonLines;
  return Kind::Json;
}

}  // namespace

// ---- RoutingDump --------------------------------------------------------------------------------

RoutingDump::RoutingDump(std::unique_ptr<Source> source) : src_(std::move(source)) {}
RoutingDump::~RoutingDump() = default;

std::shared_ptr<const RoutingDump> RoutingDump::open(const fs::path& path, const TraceShape& shape, const fs::path& token_ids) {
  if (!fs::exists(path)) throw Error("cannot open " + path.string());
  if (!token_ids.empty() && !fs::exists(token_ids)) throw Error("cannot open " + token_ids.string());
  const auto t0 = std::chrono::steady_clock::now();
  const Kind kind = kind_of(path);
  if (!token_ids.empty() && kind != Kind::Npy && kind != Kind::Safetensors)
    throw Error("token ids beside the routing apply to .npy and .safetensors dumps only");
  std::unique_ptr<Source> src;
  switch (kind) {
    case Kind::Npy: src = std::make_unique<NpySource>(path, shape, token_ids); break;
    case Kind::Safetensors: src = std::make_unique<SafetensorsSource>(path, shape, token_ids); break;
    case Kind::JsonLines: src = std::make_unique<JsonLinesSource>(path, shape); break;
    case Kind::Json: src = std::make_unique<JsonSource>(path, shape); break;
  }
  spdlog::debug("routing dump {}: {} ({} sequences), opened in {:.1f} ms", path.string(), src->format, src->sequences(),
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return std::shared_ptr<const RoutingDump>(new RoutingDump(std::move(src)));
}

const std::string& RoutingDump::format() const { return src_->format; }
int64_t RoutingDump::sequences() const { return src_->sequences(); }
const TraceShape& RoutingDump::shape() const { return src_->shape; }
RoutingTrace RoutingDump::sequence(int64_t index) const { return src_->sequence(index); }
std::string RoutingDump::sequence_label(int64_t index) const { return src_->label(index); }
RoutingStats RoutingDump::stats(const DumpProgress& p) const {
  const auto t0 = std::chrono::steady_clock::now();
  RoutingStats s = src_->stats(p);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::debug("routing dump {}: statistics of {} tokens in {:.2f} s", src_->name, s.tokens(), secs);
  return s;
}

RoutingStats dump_stats(const fs::path& path, const TraceShape& shape, const fs::path& token_ids) {
  return RoutingDump::open(path, shape, token_ids)->stats();
}

}  // namespace moescope
