// tokenizer.json -> Pipeline. Every problem becomes one moescope::Error line naming the file.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"

namespace moescope::tok {

using json = nlohmann::json;

// nlohmann's messages start with "[json.exception.parse_error.101] "; keep what follows.
std::string fix_json_error(const std::string& what) {
  const size_t close = what.find("] ");
  std::string s = what.rfind("[json.exception.", 0) == 0 && close != std::string::npos
                      ? what.substr(close + 2) : what;
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

// Normalised tokens are looked for in normalised text, so their pattern is normalised too; HF
// also hands out that normalised form when decoding them.
void Pipeline::build_matchers() {
  raw_matcher = AddedTokenMatcher();
  normalized_matcher = AddedTokenMatcher();
  for (size_t k = 0; k < added.size(); ++k) {
    AddedToken& t = added[k];
    t.text = t.content;
    if (t.normalized) {
      if (normalizer) normalizer->normalize(t.text);
      normalized_matcher.add(t.text, k);
      added_by_content.emplace(t.text, t.id);
    } else {
      raw_matcher.add(t.content, k);
    }
  }
}

std::unique_ptr<Pipeline> load_tokenizer_json(const std::string& text, const std::string& where) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw Error(where + ": malformed JSON: " + fix_json_error(e.what()));
  }
  try {
    if (!doc.is_object()) throw Error("top level is not an object");
    if (!doc.contains("model")) throw Error("no 'model'");
    auto p = std::make_unique<Pipeline>();
    p->normalizer = make_normalizer(doc.value("normalizer", json()));
    p->pre_tokenizer = make_pre_tokenizer(doc.value("pre_tokenizer", json()));
    p->model = std::make_unique<Bpe>(doc.at("model"));
    p->post_processor = make_post_processor(doc.value("post_processor", json()));
    p->decoder = make_decoder(doc.value("decoder", json()));

    // HF ignores the ids written in added_tokens and assigns them as it adds each token
    // (added_vocabulary.rs, add_tokens): the id the content already has (an earlier added token,
    // then the model's vocabulary), else one past the largest added id (at least the model's
    // vocabulary size). For consistent files this reproduces the written ids.
    const auto model_size = int64_t(p->model->vocab_count());
    int64_t max_added = -1;
    int32_t max_id = int32_t(p->model->id_to_token().size()) - 1;
    for (const auto& a : doc.value("added_tokens", json::array())) {
      AddedToken t;
      t.content = a.at("content").get<std::string>();
      if (t.content.empty()) continue;
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.normalized = a.value("normalized", !t.special);
      t.single_word = a.value("single_word", false);
      if (const auto it = p->added_by_content.find(t.content); it != p->added_by_content.end()) {
        t.id = it->second;
      } else if (const auto v = p->model->token_to_id(t.content)) {
        t.id = *v;
      } else {
        t.id = int32_t(max_added < 0 ? model_size : std::max(max_added, model_size - 1) + 1);
      }
      if (a.contains("id") && a.at("id") != t.id)
        spdlog::debug("tokenizer: added token '{}' gets id {} (file says {}), as HF assigns it",
                      t.content, t.id, a.at("id").dump());
      max_added = std::max(max_added, int64_t(t.id));
      max_id = std::max(max_id, t.id);
      p->added_by_content[t.content] = t.id;
      if (const auto it = p->added_by_id.find(t.id); it != p->added_by_id.end()) {
        p->added[it->second] = std::move(t);  // same token again: the later flags win
      } else {
        p->added_by_id[t.id] = p->added.size();
        p->added.push_back(std::move(t));
      }
    }
    p->vocab_size = max_id + 1;
    p->build_matchers();
    return p;
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  } catch (const json::exception& e) {
    throw Error(where + ": invalid tokenizer: " + fix_json_error(e.what()));
  }
}

}  // namespace moescope::tok
