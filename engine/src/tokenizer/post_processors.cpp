// Post-processors (HF tokenizers/src/processors) for one sequence with add_special_tokens: they
// only add ids around it. ByteLevel's post-processor only trims offsets, so it adds nothing here.
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"

namespace moescope::tok {

namespace {

using json = nlohmann::json;

// A token id from the file: an integer in the vocabulary's id range (a float such as 1e300 would
// make the conversion to int undefined behaviour; fuzz finding).
int32_t token_id(const json& v, const char* what) {
  if (!v.is_number_integer()) throw Error(std::string(what) + ": token id " + v.dump() + " is not an integer");
  const int64_t id = v.get<int64_t>();
  if (id < 0 || id > 0x7FFFFFF) throw Error(std::string(what) + ": token id " + std::to_string(id) + " out of range");
  return int32_t(id);
}

// Ids before and after the sequence ($A): TemplateProcessing's `single`, Roberta/Bert's cls/sep.
class WrapProcessor : public PostProcessor {
public:
  WrapProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

private:
  std::vector<int32_t> before_, after_;
};

class NoopProcessor : public PostProcessor {
public:
  void process(std::vector<int32_t>&) const override {}
};

class SequenceProcessor : public PostProcessor {
public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }

private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

std::unique_ptr<PostProcessor> make_template(const json& j) {
  const json& single = j.at("single");
  const json& specials = j.value("special_tokens", json::object());
  std::vector<int32_t> before, after;
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.contains("Sequence")) {
      const auto id = item.at("Sequence").value("id", "A");
      if (id != "A") throw Error("TemplateProcessing: single template uses sequence '" + id + "'");
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const auto name = item.at("SpecialToken").at("id").get<std::string>();
      if (!specials.contains(name))
        throw Error("TemplateProcessing: special token '" + name + "' is not in special_tokens");
      for (const auto& id : specials.at(name).at("ids"))
        (seen_sequence ? after : before).push_back(token_id(id, "TemplateProcessing"));
    } else {
      throw Error("TemplateProcessing: unsupported template item " + item.dump());
    }
  }
  return std::make_unique<WrapProcessor>(std::move(before), std::move(after));
}

}  // namespace

std::unique_ptr<PostProcessor> make_bos_eos_processor(std::optional<int32_t> bos,
                                                      std::optional<int32_t> eos) {
  std::vector<int32_t> before, after;
  if (bos) before.push_back(*bos);
  if (eos) after.push_back(*eos);
  return std::make_unique<WrapProcessor>(std::move(before), std::move(after));
}

std::unique_ptr<PostProcessor> make_post_processor(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "TemplateProcessing") return make_template(j);
  if (type == "ByteLevel") return std::make_unique<NoopProcessor>();
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    // "cls": ["<s>", 0], "sep": ["</s>", 2]
    return std::make_unique<WrapProcessor>(std::vector<int32_t>{token_id(j.at("cls").at(1), type.c_str())},
                                           std::vector<int32_t>{token_id(j.at("sep").at(1), type.c_str())});
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (const auto& p : j.at("processors"))
      if (auto q = make_post_processor(p)) parts.push_back(std::move(q));
    return std::make_unique<SequenceProcessor>(std::move(parts));
  }
  throw Error("unsupported post_processor type '" + type + "'");
}

}  // namespace moescope::tok
