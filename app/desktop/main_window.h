#pragma once
// The composition root of the desktop app: conversations on the left, the chat in the centre,
// views in dock widgets (from the ViewRegistry, listed in the Views menu), the status bar, and
// the glue between the chat, the conversation store and the engine controller.
#include <QMainWindow>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "app_options.h"
#include "ui/conversation.h"
#include "ui/conversation_store.h"
#include "ui/engine_types.h"
#include "ui/engine_requests.h"
#include "ui/notice_bar.h"

class QAction;
class QDockWidget;
class QLabel;
class QMenu;
class QProgressBar;
class QPushButton;
class QSplitter;

namespace moescope::ui {
class ActiveIntervention;
class ChatPanel;
class ConversationList;
class EngineFeed;
class EngineHost;
class GuideWindow;
class TraceModel;
class ViewRegistry;
struct ViewFactory;
}  // namespace moescope::ui

namespace moescope::desktop {

class DumpPanel;

class AppSettings;

class MainWindow : public QMainWindow {
  Q_OBJECT
public:
  // views: the dock-widget views to build (register_views, register_experiments); none: a bare
  // window (tests).
  explicit MainWindow(const AppOptions& options, const ui::ViewRegistry& views, QWidget* parent = nullptr);
  ~MainWindow() override;

  // Commands (the menus and buttons call these; so do tests and the screenshot mode).
  // weights: how to load it (File ▸ Open model…'s Q8_0 choice); none: as it was last loaded
  // (the recent-models list remembers), else as stored.
  void openModel(const QString& dir, std::optional<WeightsMode> weights = std::nullopt);
  // The remote backend: chat with a model on an OpenAI-compatible server (File ▸ Connect to a
  // server…, which opens the dialog and remembers the choices as AppSettings says).
  void connectToServer(const ui::RemoteServer& server);
  void openServerDialog();
  // File ▸ Open routing dump: a dump of routed experts shown in every view, a sequence at a time,
  // in the "Routing dump" dock (dump_panel.h). config: the model's config.json / preset (layers
  // and experts); token_ids: ids beside an array dump. False with the message shown on a bad file.
  bool openRoutingDump(const QString& path, const QString& config = {}, const QString& token_ids = {});
  void openRoutingDumpDialog();
  DumpPanel* dumpPanel() const { return dump_panel_; }
  void send(const QString& text, int edit_index = -1);
  void regenerate();
  void stop();
  void newConversation();
  void selectConversation(const QString& id);
  void renameConversation(const QString& id, const QString& title);
  void deleteConversation(const QString& id);
  void setConversationSettings(const QString& system_prompt, const ui::SamplingSettings& sampling);
  void dropOldestMessages(int n);  // then answer again
  QString exportMarkdown() const;
  QString exportJson() const;

  // Views: a dock for each registered view; `addView` for one made elsewhere.
  QDockWidget* addView(const ui::ViewFactory& factory);
  bool showView(const QString& id);
  QWidget* viewWidget(const QString& id) const;  // the view made for `id`, null when none
  QDockWidget* viewDock(const QString& id) const;
  QStringList viewIds() const;  // in menu order
  QMenu* viewsMenu() const { return views_menu_; }
  // Help ▸ Guide: the guide window at `page` (a ui/guide.h page id; empty: where it was), made
  // on first use; guide() is null until then.
  void openGuide(const QString& page = {});
  ui::GuideWindow* guide() const { return guide_; }

  ui::ChatPanel* chat() const { return chat_; }
  ui::ConversationList* conversationList() const { return list_; }
  ui::EngineFeed* feed() const { return feed_; }
  ui::EngineHost* engine() const { return engine_; }
  ui::TraceModel* traces() const { return traces_; }
  ui::ActiveIntervention* intervention() const { return intervention_; }
  const ui::Conversation* current() const;
  const std::vector<ui::Conversation>& conversations() const { return conversations_; }
  const ui::SamplingSettings& modelDefaults() const { return defaults_; }
  QString statusText() const;  // the status bar's labels, for tests and logs
  const QString& dataDir() const { return data_dir_; }

signals:
  void modelReady();
  void modelFailed(const QString& message);
  void answerFinished();
  void answerFailed(const QString& message);

protected:
  void closeEvent(QCloseEvent* e) override;

private:
  void placeFirstTime(QDockWidget* dock);
  void buildMenus();
  void buildStatusBar();
  void restoreConversations();
  void refreshList();
  void showCurrent(bool replace_trace = true);
  ui::Conversation* find(const QString& id);
  void save(ui::Conversation& c);
  void startAnswer(ui::Conversation& c);
  void onLoaded(const ui::ModelInfo& info);
  void restoreReadyState();
  void onChunk(const ui::StreamChunk& chunk);
  void onFinished(const ui::GenerationSummary& summary);
  void onFailed(const QString& message);
  void onContextOverflow(int prompt_tokens, int context, int drop);
  void showError(const QString& id, const QString& title, const QString& message,
                 const QList<ui::NoticeBar::Action>& actions = {});
  void showFallbackNotice(const QString& reason);
  void updateContextLabel(int64_t used, int64_t capacity);
  void rebuildRecentMenu();
  void openModelDialog();
  void chooseBackend();
  void editSettings();
  void exportTo(bool markdown);
  void saveWindowState();

  AppOptions options_;
  QString data_dir_;
  QString server_key_;
  DumpPanel* dump_panel_ = nullptr;  // made on first use
  QDockWidget* dump_dock_ = nullptr;  // the API key given this session (kept in settings only when asked to)
  std::unique_ptr<AppSettings> settings_;
  std::unique_ptr<ui::ConversationStore> store_;
  ui::EngineFeed* feed_;
  ui::EngineHost* engine_;
  ui::TraceModel* traces_;
  ui::ActiveIntervention* intervention_;
  struct DockedView {
    QDockWidget* dock = nullptr;
    QWidget* widget = nullptr;
  };
  std::map<QString, DockedView> views_;
  QStringList view_order_;
  QMenu* file_menu_ = nullptr;
  QAction* no_views_ = nullptr;
  QSplitter* splitter_;
  ui::ConversationList* list_;
  ui::ChatPanel* chat_;
  QMenu* views_menu_ = nullptr;
  QMenu* recent_menu_ = nullptr;
  QLabel* backend_label_;
  QLabel* model_label_;
  QLabel* speed_label_;
  QLabel* context_label_;
  QProgressBar* load_bar_;
  QLabel* load_label_;
  QPushButton* load_cancel_;
  ui::GuideWindow* guide_ = nullptr;

  std::vector<ui::Conversation> conversations_;  // most recently updated first
  QString current_id_;
  QString answering_id_;   // the conversation the engine is answering
  QString streaming_text_;
  quint64 answer_seed_ = 0;
  ui::SamplingSettings defaults_;  // from the model's generation_config.json
};

}  // namespace moescope::desktop
