// safetensors reader. Format: 8-byte little-endian header length N, N bytes of JSON mapping
// tensor name -> {dtype, shape, data_offsets: [begin, end)} relative to the byte after the
// header, then the data. Nothing in the header is trusted.
#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "moescope/checkpoint.h"
#include "moescope/error.h"
#include "checkpoint/mapped_file.h"
#include "checkpoint/safetensors_header.h"

namespace fs = std::filesystem;

namespace moescope {

namespace {

constexpr uint64_t kMaxHeaderBytes = 256ull << 20;  // real headers are a few MB at most

DType parse_dtype(const std::string& s, const std::string& where) {
  if (s == "F32") return DType::F32;
  if (s == "F16") return DType::F16;
  if (s == "BF16") return DType::BF16;
  if (s == "U8") return DType::U8;  // MXFP4 blocks and scales (gpt-oss); checked where they are bound
  throw Error(where + ": dtype " + s + " is not supported (supported: F32, F16, BF16, U8)");
}

}  // namespace

Checkpoint::~Checkpoint() = default;

std::vector<SafetensorsEntry> read_safetensors_header(
    const MappedFile& file, const std::function<size_t(const std::string&, const std::string&)>& element_size) {
  const std::string fname = file.path().filename().string();
  const size_t size = file.size();
  if (size < 8) throw Error(fname + ": truncated safetensors file (" + std::to_string(size) + " bytes)");
  uint64_t header_len = 0;
  std::memcpy(&header_len, file.data(), 8);  // little-endian on every supported host
  if (header_len > size - 8)
    throw Error(fname + ": header length " + std::to_string(header_len) + " runs past the end of the file (" +
                std::to_string(size) + " bytes)");
  if (header_len > kMaxHeaderBytes) throw Error(fname + ": header length " + std::to_string(header_len) + " is absurd");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file.data() + 8, file.data() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fname + ": header is not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!header.is_object()) throw Error(fname + ": header is not a JSON object");

  const uint8_t* base = file.data() + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  struct Span { uint64_t begin, end; std::string name; };
  std::vector<Span> spans;
  std::vector<SafetensorsEntry> out;

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const std::string where = fname + ": tensor '" + name + "'";
    const auto& info = it.value();
    if (!info.is_object() || !info.contains("dtype") || !info["dtype"].is_string() || !info.contains("shape") ||
        !info["shape"].is_array() || !info.contains("data_offsets") || !info["data_offsets"].is_array() ||
        info["data_offsets"].size() != 2)
      throw Error(where + " has a malformed entry");
    SafetensorsEntry t;
    t.name = name;
    t.dtype = info["dtype"].get<std::string>();
    const size_t esize = element_size(t.dtype, where);
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) throw Error(where + " has a malformed shape " + info["shape"].dump());
      uint64_t v = d.get<uint64_t>();
      if (v > (1ull << 40) || (v && t.numel > (1ull << 48) / v)) throw Error(where + " has an absurd shape");
      t.numel *= v;
      t.shape.push_back(int64_t(v));
    }
    const auto& off = info["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      throw Error(where + " has malformed data_offsets");
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size)
      throw Error(where + " has data offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                  ") outside the file's " + std::to_string(data_size) + " data bytes (truncated file?)");
    if (end - begin != t.numel * esize) {
      std::string shape = "[";
      for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? ", " : "") + std::to_string(t.shape[i]);
      throw Error(where + " holds " + std::to_string(end - begin) + " bytes but its shape " + shape + "]" +
                  " and dtype " + t.dtype + " need " + std::to_string(t.numel * esize));
    }
    t.data = base + begin;
    t.bytes = end - begin;
    spans.push_back({begin, end, name});
    out.push_back(std::move(t));
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].begin < spans[i - 1].end && spans[i].end > spans[i].begin)
      throw Error(fname + ": tensors '" + spans[i - 1].name + "' and '" + spans[i].name + "' overlap");
  return out;
}

void Checkpoint::add_file(const fs::path& file) {
  auto mapped = std::make_unique<MappedFile>(file);
  const std::string fname = file.filename().string();
  const size_t size = mapped->size();
  const auto entries = read_safetensors_header(*mapped, [](const std::string& dtype, const std::string& where) {
    return dtype_size(parse_dtype(dtype, where));
  });
  for (const SafetensorsEntry& e : entries) {
    const std::string where = fname + ": tensor '" + e.name + "'";
    TensorView t;
    t.dtype = parse_dtype(e.dtype, where);
    t.shape = e.shape;
    t.data = e.data;
    if (reinterpret_cast<uintptr_t>(t.data) % dtype_size(t.dtype) != 0 && e.bytes > 0) {
      auto copy = std::make_unique<uint8_t[]>(e.bytes);  // new[] is aligned for any dtype
      std::memcpy(copy.get(), e.data, e.bytes);
      t.data = copy.get();
      aligned_copies_.push_back(std::move(copy));
      spdlog::debug("{}: misaligned in the file, copied ({} bytes)", where, e.bytes);
    }
    if (tensors_.count(e.name)) throw Error(where + " appears in more than one file");
    tensors_[e.name] = t;
    origin_[e.name] = fname;
  }
  total_bytes_ += size;
  files_.push_back(std::move(mapped));
  spdlog::debug("checkpoint: {} with {} tensors ({} bytes)", fname, entries.size(), size);
}

std::unique_ptr<Checkpoint> Checkpoint::open_file(const fs::path& file) {
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = file.parent_path();
  ck->add_file(file);
  return ck;
}

std::unique_ptr<Checkpoint> Checkpoint::open(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw Error(dir.string() + " is not a directory");
  std::unique_ptr<Checkpoint> ck(new Checkpoint());
  ck->dir_ = dir;
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(index)) {
    nlohmann::json j;
    try {
      std::ifstream in(index, std::ios::binary);
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error("model.safetensors.index.json: invalid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error("model.safetensors.index.json: no 'weight_map' object");
    std::vector<std::string> files;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string()) throw Error("model.safetensors.index.json: weight_map entry for '" + it.key() + "' is not a file name");
      std::string f = it.value().get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw Error("model.safetensors.index.json: file name '" + f + "' must be a plain name in the directory");
      if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
    for (const auto& f : files) {
      if (!fs::exists(dir / f)) throw Error("model.safetensors.index.json names " + f + ", which does not exist");
      ck->add_file(dir / f);
    }
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      auto o = ck->origin_.find(it.key());
      if (o == ck->origin_.end() || o->second != it.value().get<std::string>())
        throw Error("model.safetensors.index.json: tensor '" + it.key() + "' is not in " + it.value().get<std::string>());
    }
  } else {
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir))
      if (e.is_regular_file() && e.path().extension() == ".safetensors") files.push_back(e.path());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw Error("no .safetensors files in " + dir.string());
    for (const auto& f : files) ck->add_file(f);
  }
  return ck;
}

bool Checkpoint::has(const std::string& name) const { return tensors_.count(name) > 0; }

const TensorView& Checkpoint::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error("checkpoint: missing tensor '" + name + "'");
  return it->second;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [k, v] : tensors_) out.push_back(k);
  return out;
}

}  // namespace moescope
