#pragma once
// Conversations on disk: one `<id>.json` per conversation in a folder, written atomically
// (QSaveFile). A file that cannot be read is moved aside as `<name>.corrupt-<timestamp>` and
// reported, so one bad file never stops the others from loading.
#include <QString>
#include <QStringList>
#include <vector>

#include "ui/conversation.h"

namespace moescope::ui {

class ConversationStore {
public:
  explicit ConversationStore(QString dir);
  const QString& dir() const { return dir_; }

  struct LoadResult {
    std::vector<Conversation> conversations;  // most recently updated first
    QStringList problems;                      // one readable line per file set aside
  };
  LoadResult load_all() const;
  // Returns an empty string on success, else a readable error.
  QString save(const Conversation& c) const;
  bool remove(const QString& id) const;
  QString path_of(const QString& id) const;

private:
  QString dir_;
};

// The folder where the app keeps its data: $MOESCOPE_DATA_DIR when set, else
// QStandardPaths::AppDataLocation.
QString default_data_dir();

}  // namespace moescope::ui
