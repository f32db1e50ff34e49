#pragma once
// UTF-8 helpers for the tokenizer: validation, code points, Rust's lossy decoding (which HF's
// decoders use), and the few Unicode properties and normalisations (through ICU) HF relies on.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace moescope::tok {

// Byte offset of the first byte that makes `s` invalid UTF-8, or npos when it is valid.
size_t utf8_error_offset(std::string_view s);

// Decodes the code point at s[i] (s must be valid UTF-8) and advances i past it.
char32_t next_code_point(std::string_view s, size_t& i);
void append_utf8(std::string& out, char32_t cp);
inline size_t utf8_length(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

// Like Rust's String::from_utf8_lossy: every maximal invalid subpart becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

// Rust's char::is_whitespace (the White_Space property), char::is_numeric (Nd, Nl, No) and the
// `\w` class used for single_word added tokens.
bool is_whitespace(char32_t cp);
bool is_numeric(char32_t cp);
bool is_word_char(char32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
std::string normalize_unicode(std::string_view s, NormalForm form);
std::string to_lower(std::string_view s);

// GPT-2's byte-level alphabet: every byte maps to a printable code point.
const std::string& byte_to_unicode(uint8_t b);  // UTF-8 of the mapped code point
int unicode_to_byte(char32_t cp);                // -1 when cp is not in the alphabet

}  // namespace moescope::tok
