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

void Pipeline::build_matchers() {
  raw_matcher = AddedTokenMatcher();
  normalized_matcher = AddedTokenMatcher();
  for (size_t k = 0; k < added.size(); ++k) {
    const AddedToken& t = added[k];
    if (t.normalized) {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_matcher.add(std::move(pattern), k);
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

    int32_t max_id = int32_t(p->model->id_to_token().size()) - 1;
    for (const auto& a : doc.value("added_tokens", json::array())) {
      AddedToken t;
      t.content = a.at("content").get<std::string>();
      const auto id = a.at("id").get<int64_t>();
      if (id < 0 || id > 0x7FFFFFF)
        throw Error("added token '" + t.content + "' has id " + std::to_string(id) + " out of range");
      t.id = int32_t(id);
      t.special = a.value("special", false);
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.normalized = a.value("normalized", !t.special);
      t.single_word = a.value("single_word", false);
      max_id = std::max(max_id, t.id);
      p->added_by_id[t.id] = p->added.size();
      p->added_by_content[t.content] = t.id;
      p->added.push_back(std::move(t));
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
