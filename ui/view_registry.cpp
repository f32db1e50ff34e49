#include "ui/view_registry.h"

#include <QStringList>
#include <algorithm>

namespace moescope::ui {

void ViewRegistry::add(ViewFactory factory) {
  auto it = std::find_if(factories_.begin(), factories_.end(), [&](const ViewFactory& f) { return f.id == factory.id; });
  if (it != factories_.end())
    *it = std::move(factory);
  else
    factories_.push_back(std::move(factory));
}

QStringList ViewRegistry::ids() const {
  QStringList out;
  for (const auto& f : factories_) out << f.id;
  return out;
}

const ViewFactory* ViewRegistry::find(const QString& id) const {
  for (const auto& f : factories_)
    if (f.id == id) return &f;
  return nullptr;
}

}  // namespace moescope::ui
