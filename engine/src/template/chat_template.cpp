// tokenizer_config.json's chat template and transformers' apply_chat_template around the renderer
// (transformers/tokenization_utils_base.py `apply_chat_template`, and `render_jinja_template` in
// transformers/utils/chat_template_utils.py).
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "moescope/chat_template.h"

namespace moescope {
namespace {

std::string read_text(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error("cannot read " + p.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string token_field(const nlohmann::json& config, const char* key, const std::filesystem::path& path) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto c = it->find("content");
    if (c != it->end() && c->is_string()) return c->get<std::string>();
  }
  throw Error(path.string() + ": " + key + " must be a string or an object with a string \"content\"");
}

// Parsing is cheap, but a chat session renders the same template every turn: keep a few parsed.
ChatTemplate parsed(const std::string& source) {
  static std::mutex mutex;
  static std::unordered_map<std::string, ChatTemplate> cache;
  std::lock_guard lock(mutex);
  auto it = cache.find(source);
  if (it != cache.end()) return it->second;
  ChatTemplate t = ChatTemplate::parse(source);
  if (cache.size() >= 8) cache.clear();
  cache.emplace(source, t);
  return t;
}

template <class J>
std::string apply(const ChatTemplateConfig& config, const J& messages, bool add_generation_prompt,
                  const J& extra) {
  if (!messages.is_array()) throw Error("chat messages must be a JSON array of {\"role\", \"content\"} objects");
  if (messages.empty())
    throw Error("Cannot apply chat template to an empty conversation. Provide at least one message.");
  if (!extra.is_object()) throw Error("extra template variables must be a JSON object");

  // Messages as transformers hands them to the template: keys whose value is null dropped, and
  // the reasoning aliased, {"thinking": r, **message, "reasoning_content": r} where r is the first
  // of reasoning_content / thinking / reasoning that is set.
  J chat = J::array();
  for (const auto& m : messages) {
    if (!m.is_object()) throw Error("Chat messages should be objects, but got " + m.dump());
    J msg = J::object();
    for (auto it = m.begin(); it != m.end(); ++it)
      if (!it.value().is_null()) msg[it.key()] = it.value();
    const J* reasoning = nullptr;
    for (const char* key : {"reasoning_content", "thinking", "reasoning"})
      if (!reasoning && msg.contains(key)) reasoning = &msg[key];
    if (reasoning) {
      J r = *reasoning;
      J aliased = J::object();
      aliased["thinking"] = r;
      for (auto it = msg.begin(); it != msg.end(); ++it) aliased[it.key()] = it.value();
      aliased["reasoning_content"] = r;
      msg = std::move(aliased);
    }
    chat.push_back(std::move(msg));
  }

  J vars = J::object();
  if (!config.bos_token.empty()) vars["bos_token"] = config.bos_token;
  if (!config.eos_token.empty()) vars["eos_token"] = config.eos_token;
  for (auto it = extra.begin(); it != extra.end(); ++it) {
    if (it.key() == "messages" || it.key() == "add_generation_prompt")
      throw Error("extra template variables must not set '" + it.key() + "'");
    vars[it.key()] = it.value();
  }
  if (!vars.contains("tools")) vars["tools"] = nullptr;
  if (!vars.contains("documents")) vars["documents"] = nullptr;
  if (vars["documents"].is_array())
    for (const auto& d : vars["documents"])
      if (!d.is_object()) throw Error("Documents should be a list of objects with 'title' and 'text' keys");
  vars["messages"] = std::move(chat);
  vars["add_generation_prompt"] = add_generation_prompt;
  return parsed(config.source).render(vars, config.now);
}

}  // namespace

ChatTemplateConfig load_chat_template_config(const std::filesystem::path& path, const std::string& name) {
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(read_text(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + e.what() + ")");
  }
  if (!config.is_object()) throw Error(path.string() + ": expected a JSON object");

  ChatTemplateConfig out;
  out.bos_token = token_field(config, "bos_token", path);
  out.eos_token = token_field(config, "eos_token", path);

  // transformers prefers the separate files newer checkpoints ship beside tokenizer_config.json.
  const auto dir = path.parent_path();
  const auto side_file = name == "default" ? dir / "chat_template.jinja"
                                           : dir / "additional_chat_templates" / (name + ".jinja");
  if (std::filesystem::is_regular_file(side_file)) {
    spdlog::debug("chat template from {}", side_file.string());
    out.source = read_text(side_file);
    return out;
  }

  auto it = config.find("chat_template");
  if (it == config.end() || it->is_null())
    throw Error(path.string() + " has no chat_template (and there is no chat_template.jinja beside it)");
  if (it->is_string()) {
    if (name != "default") throw Error(path.string() + " has a single chat_template, not one named '" + name + "'");
    out.source = it->get<std::string>();
    return out;
  }
  if (it->is_array()) {
    std::string names;
    for (const auto& entry : *it) {
      if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") || !entry["name"].is_string() ||
          !entry["template"].is_string())
        throw Error(path.string() + ": chat_template list entries must be {\"name\": ..., \"template\": ...}");
      const std::string n = entry["name"].get<std::string>();
      if (n == name) {
        out.source = entry["template"].get<std::string>();
        return out;
      }
      names += (names.empty() ? "" : ", ") + n;
    }
    throw Error(path.string() + ": no chat template named '" + name + "' (it has: " + names + ")");
  }
  throw Error(path.string() + ": chat_template must be a string or a list of {\"name\", \"template\"}");
}

std::string apply_chat_template(const ChatTemplateConfig& config, const nlohmann::json& messages,
                                bool add_generation_prompt, const nlohmann::json& extra_variables) {
  return apply(config, messages, add_generation_prompt, extra_variables);
}

std::string apply_chat_template(const ChatTemplateConfig& config, const nlohmann::ordered_json& messages,
                                bool add_generation_prompt, const nlohmann::ordered_json& extra_variables) {
  return apply(config, messages, add_generation_prompt, extra_variables);
}

}  // namespace moescope
