#pragma once
// The one exception type the engine throws for bad input: its message is a single line that names
// the problem (file, field, tensor, ...) and is shown to the user as is.
#include <stdexcept>
#include <string>

namespace moescope {

class Error : public std::runtime_error {
public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace moescope
