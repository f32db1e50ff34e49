// moescope-cli template: a conversation rendered through the model directory's chat template,
// exactly as transformers' apply_chat_template(messages, tokenize=False) renders it.
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "args.h"
#include "commands.h"
#include "common.h"
#include "moescope/chat_template.h"
#include "moescope/error.h"

namespace moescope::cli {

int cmd_template(int argc, char** argv) {
  Args args(argc, argv, 2, {"no-generation-prompt"}, {"model", "messages"});
  const std::filesystem::path dir = model_dir(args);
  const std::string messages_path = args.require("messages");

  std::ifstream in(messages_path, std::ios::binary);
  if (!in) throw Error(messages_path + ": cannot open file");
  std::ostringstream text;
  text << in.rdbuf();
  nlohmann::ordered_json doc;
  try {
    doc = nlohmann::ordered_json::parse(text.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(messages_path + ": not valid JSON (" + e.what() + ")");
  }
  // The file holds the messages array; an object {"messages": [...], "tools": [...], ...} also
  // passes its other keys to the template as extra variables (tools, documents, enable_thinking).
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  if (doc.is_object()) {
    if (!doc.contains("messages")) throw Error(messages_path + ": an object needs a \"messages\" array");
    for (auto it = doc.begin(); it != doc.end(); ++it)
      if (it.key() != "messages") extra[it.key()] = it.value();
    doc = nlohmann::ordered_json(doc["messages"]);
  }
  if (!doc.is_array()) throw Error(messages_path + ": expected a JSON array of {\"role\", \"content\"} messages");

  const ChatTemplateConfig config = load_chat_template_config(dir / "tokenizer_config.json");
  const std::string prompt = apply_chat_template(config, doc, !args.has("no-generation-prompt"), extra);
  std::cout << prompt << std::flush;
  return 0;
}

}  // namespace moescope::cli
