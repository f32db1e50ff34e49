#include "ui/generation_defaults.h"

#include <cmath>
#include <spdlog/spdlog.h>

namespace moescope::ui {

SamplingSettings sampling_defaults(const QString& generation_config_json) {
  SamplingSettings s;
  if (generation_config_json.trimmed().isEmpty()) return s;
  try {
    const auto j = nlohmann::json::parse(generation_config_json.toStdString());
    auto num = [&](const char* key, auto& out) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number()) return;
      if (const double v = it->get<double>(); !std::isfinite(v)) {  // 1e999: infinity
        spdlog::warn("generation_config.json: {} is not a finite number; the default is kept", key);
        return;
      }
      out = it->get<std::decay_t<decltype(out)>>();
    };
    num("temperature", s.temperature);
    num("top_p", s.top_p);
    num("top_k", s.top_k);
    num("min_p", s.min_p);
    num("repetition_penalty", s.repetition_penalty);
    num("max_new_tokens", s.max_tokens);
    // transformers samples only with do_sample=true; without it the checkpoint means greedy.
    if (j.contains("do_sample") && j["do_sample"].is_boolean() && !j["do_sample"].get<bool>()) s.temperature = 0.0;
  } catch (const std::exception& e) {
    spdlog::warn("generation_config.json ignored: {}", e.what());
  }
  return s;
}

}  // namespace moescope::ui
