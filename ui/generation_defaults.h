#pragma once
// Sampling defaults from a checkpoint's generation_config.json (temperature, top_p, top_k, min_p,
// repetition_penalty, max_new_tokens, do_sample), over the app's own defaults.
#include <QString>

#include "ui/conversation.h"

namespace moescope::ui {

// json_text: the file's content; empty or unreadable gives the app defaults.
SamplingSettings sampling_defaults(const QString& generation_config_json);

}  // namespace moescope::ui
