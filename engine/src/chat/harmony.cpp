#include "moescope/harmony.h"

#include "moescope/error.h"

namespace moescope {

namespace {

int32_t need(const Tokenizer& tok, const char* token) {
  const auto id = tok.token_to_id(token);
  if (!id) throw Error(std::string("the tokenizer has no ") + token + " token (not gpt-oss' harmony format)");
  return *id;
}

std::string first_word(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_first_of(" \t\n", b);
  return s.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

}  // namespace

HarmonyParser::HarmonyParser(const Tokenizer& tok)
    : tok_(tok),
      start_(need(tok, "<|start|>")),
      channel_(need(tok, "<|channel|>")),
      message_(need(tok, "<|message|>")),
      end_(need(tok, "<|end|>")),
      return_(need(tok, "<|return|>")),
      call_(tok.token_to_id("<|call|>").value_or(-1)),
      constrain_(tok.token_to_id("<|constrain|>")) {}

void HarmonyParser::append(HarmonyText& out, const std::string& text) {
  if (text.empty()) return;
  if (target_ == Target::Content) {
    out.content += text;
  } else if (target_ == Target::Reasoning) {
    if (pending_separator_) out.reasoning += '\n';  // between two reasoning messages
    pending_separator_ = false;
    reasoning_written_ = true;
    out.reasoning += text;
  }
}

void HarmonyParser::open_message() {
  const std::string name = first_word(header_);
  const bool tool_call = role_.find("to=") != std::string::npos || header_.find("to=") != std::string::npos;
  target_ = name == "final" && !tool_call ? Target::Content : Target::Reasoning;
  if (target_ == Target::Content) has_final_ = true;
  pending_separator_ = target_ == Target::Reasoning && reasoning_written_;
  in_body_ = true;
  in_channel_ = false;
  any_message_ = true;
  header_ids_.clear();
  body_.emplace(tok_, /*skip_special_tokens=*/true);
}

HarmonyText HarmonyParser::push(int32_t id) {
  HarmonyText out;
  if (in_body_) {
    if (id == end_ || id == return_ || id == call_ || id == start_ || id == channel_) {
      // The message ends (<|start|> or <|channel|> without an end: a malformed answer, read on).
      append(out, body_->flush());
      body_.reset();
      in_body_ = false;
      target_ = Target::None;
      role_.clear();
      header_.clear();
      in_channel_ = id == channel_;
    } else if (!tok_.is_special(id)) {
      append(out, body_->push(id));
    }
    out.has_final = has_final_;
    return out;
  }
  // Header: [<|start|>]ROLE[ to=X]<|channel|>NAME[ to=X][<|constrain|>TYPE]<|message|>
  if (id == start_) {
    role_.clear();
    header_.clear();
    in_channel_ = false;
  } else if (id == channel_) {
    in_channel_ = true;
  } else if (id == message_) {
    open_message();
  } else if (constrain_ && id == *constrain_) {
    header_ += ' ';
  } else if (!tok_.is_special(id)) {
    (in_channel_ ? header_ : role_) += tok_.decode(std::span<const int32_t>(&id, 1));
    if (!any_message_) header_ids_.push_back(id);
  }
  out.has_final = has_final_;
  return out;
}

HarmonyText HarmonyParser::flush() {
  HarmonyText out;
  if (in_body_ && body_) append(out, body_->flush());
  if (!any_message_ && !header_ids_.empty()) out.content = tok_.decode(header_ids_, /*skip_special_tokens=*/true);
  header_ids_.clear();
  out.has_final = has_final_;
  return out;
}

HarmonyText HarmonyParser::parse(const Tokenizer& tok, std::span<const int32_t> ids) {
  HarmonyParser p(tok);
  HarmonyText all;
  auto add = [&](const HarmonyText& t) {
    all.reasoning += t.reasoning;
    all.content += t.content;
    all.has_final = t.has_final;
  };
  for (int32_t id : ids) add(p.push(id));
  add(p.flush());
  return all;
}

}  // namespace moescope
