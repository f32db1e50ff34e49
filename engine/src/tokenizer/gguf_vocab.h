#pragma once
// A GGUF file's tokenizer (tokenizer.ggml.* and tokenizer.chat_template metadata, as llama.cpp's
// convert_hf_to_gguf.py writes them) turned back into what the Hugging Face files hold: a
// tokenizer.json document for tok::load_tokenizer_json and the chat template with its bos/eos
// strings. So a GGUF file opens for chat with nothing beside it, through the same tested pipeline.
//
// Supported: byte-level BPE vocabularies (tokenizer.ggml.model "gpt2") with the pre-tokenizers
// whose Hugging Face definition is known here (tokenizer.ggml.pre "qwen2": Qwen2/Qwen3 and their
// MoE models; "deepseek-v3", also written "joyai-llm": DeepSeek-V3/R1), and SentencePiece BPE
// vocabularies ("llama": Llama-2, Mixtral), whose merges are rebuilt from the pieces' scores.
// Anything else is an Error that says what is missing and that a tokenizer.json beside the file
// is used instead.
//
// What GGUF does not keep: Hugging Face's "special" flag. The converter marks a token CONTROL when
// it is special or looks special (<|...|>, <｜...｜>); those count as special here, as in
// llama.cpp (skip_special_tokens drops them).
#include <string>

#include "moescope/chat_template.h"
#include "moescope/gguf.h"

namespace moescope::tok {

// The tokenizer.json text (throws Error naming the file and the unsupported or broken key).
std::string tokenizer_json_from_gguf(const GgufFile& g);
// The chat template (empty source when the file has none) and the bos/eos token strings.
ChatTemplateConfig chat_config_from_gguf(const GgufFile& g);

}  // namespace moescope::tok
