#pragma once
// The header of one memory-mapped .safetensors file: 8-byte little-endian length N, N bytes of
// JSON mapping tensor name -> {dtype, shape, data_offsets: [begin, end)} relative to the byte
// after the header. Nothing in it is trusted: every length, shape and offset is checked here,
// once, for the checkpoint reader (safetensors.cpp) and the routing dumps (remote/routing_dump.cpp).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "checkpoint/mapped_file.h"

namespace moescope {

struct SafetensorsEntry {
  std::string name;
  std::string dtype;           // as the header spells it ("BF16", "I32", ...)
  std::vector<int64_t> shape;
  uint64_t numel = 1;
  const uint8_t* data = nullptr;  // into the mapping; not necessarily aligned
  uint64_t bytes = 0;
};

// element_size(dtype, where) gives the bytes of one element of a dtype the caller accepts, and
// throws its own Error for one it does not (`where` names the file and tensor for the message).
// Entries come in the header's order; Error on a malformed header, an absurd shape, offsets
// outside the file, a byte count that disagrees with shape x dtype, or overlapping tensors.
std::vector<SafetensorsEntry> read_safetensors_header(
    const MappedFile& file, const std::function<size_t(const std::string& dtype, const std::string& where)>& element_size);

}  // namespace moescope
