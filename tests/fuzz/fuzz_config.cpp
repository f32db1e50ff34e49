// libFuzzer target: a config.json normalised into a ModelSpec (spec_from_config), then its anatomy
// (parameter counts, KV bytes) computed, as `moescope-cli inspect` does. Text that is not JSON is
// rejected by the parser before the engine sees it; everything after that must be a
// moescope::Error, never a crash, an overflow or a giant allocation.
#include <cstdint>
#include <nlohmann/json.hpp>

#include "moescope/anatomy.h"
#include "moescope/error.h"
#include "moescope/model_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json config = nlohmann::json::parse(data, data + size, nullptr, false);
  if (config.is_discarded()) return 0;
  try {
    const moescope::ModelSpec spec = moescope::spec_from_config(config);
    (void)moescope::anatomy_json(spec, 4096);
  } catch (const moescope::Error&) {
  }
  return 0;
}
