#include "ui/remote_client.h"

#include <QRegularExpression>
#include <QNetworkAccessManager>
#include <QNetworkReply>
#include <QNetworkRequest>
#include <QUrl>
#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "moescope/error.h"
#include "moescope/model_spec.h"
#include "moescope/resources.h"
#include "ui/engine_worker.h"
#include "ui/stream_buffer.h"

namespace moescope::ui {

namespace {

using nlohmann::json;
namespace fs = std::filesystem;

QString qs(const std::string& s) { return QString::fromStdString(s); }

constexpr int kStopPollMs = 20;

// A server's address for the log: without a user name or password written into the URL.
std::string loggable(const QString& url) { return QUrl(url).toString(QUrl::RemoveUserInfo).toStdString(); }
constexpr int kMinAnswerRoom = 16;  // fewer free tokens than this: the conversation does not fit

// A request failed before or without an HTTP answer: what the user can act on.
QString network_failure(QNetworkReply* reply, int timeout_ms) {
  const QUrl url = reply->url();
  const QString where = url.host() + (url.port() > 0 ? QStringLiteral(":%1").arg(url.port()) : QString());
  switch (reply->error()) {
    case QNetworkReply::ConnectionRefusedError:
      return QObject::tr("Could not connect to %1: connection refused (is the server running, on this port?)").arg(where);
    case QNetworkReply::HostNotFoundError: return QObject::tr("Could not connect: host %1 not found").arg(url.host());
    case QNetworkReply::TimeoutError:
    case QNetworkReply::OperationCanceledError:  // the transfer timeout aborts the reply
      return QObject::tr("The server at %1 sent nothing for %2 s (timed out)").arg(where).arg(timeout_ms / 1000.0, 0, 'g', 3);
    case QNetworkReply::RemoteHostClosedError:
      return QObject::tr("The server at %1 closed the connection").arg(where);
    case QNetworkReply::SslHandshakeFailedError:
      return QObject::tr("The TLS handshake with %1 failed: %2").arg(where, reply->errorString());
    default: return QObject::tr("The request to %1 failed: %2").arg(url.toString(QUrl::RemoveUserInfo), reply->errorString());
  }
}

// An HTTP error status, with the server's message.
QString http_failure(QNetworkReply* reply, const QByteArray& body) {
  const int status = reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt();
  const QString reason = reply->attribute(QNetworkRequest::HttpReasonPhraseAttribute).toString();
  const QString message = remote_error_message(body);
  QString head = QObject::tr("The server answered HTTP %1%2").arg(status).arg(reason.isEmpty() ? QString() : QStringLiteral(" ") + reason);
  if (status == 401 || status == 403) head = QObject::tr("The server refused the API key (HTTP %1)").arg(status);
  if (status == 404) head = QObject::tr("No such endpoint on the server (HTTP 404: is this an OpenAI-compatible server, and the base URL right?)");
  return message.isEmpty() ? head : head + QStringLiteral(": ") + message;
}

int http_status(QNetworkReply* reply) { return reply->attribute(QNetworkRequest::HttpStatusCodeAttribute).toInt(); }

}  // namespace

fs::path model_config_path(const QString& config) {
  const fs::path p = config.toStdString();
  if (fs::exists(p)) return p;
  if (const fs::path preset = preset_path(config.toStdString()); !preset.empty()) return preset;
  std::string names;
  for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("the model config " + config.toStdString() + " is neither a file, a folder nor a preset (" + names + ")");
}

namespace {

// The server's finish_reason in the engine's stop-reason names.
QString stop_reason_of(const std::string& finish) {
  if (finish == "length") return QStringLiteral("max_tokens");
  if (finish == "stop" || finish.empty()) return QStringLiteral("eos");
  return qs(finish);
}

}  // namespace

QUrl remote_endpoint(const QString& base, const QString& path) {
  QString b = base.trimmed();
  while (b.endsWith(QLatin1Char('/'))) b.chop(1);
  if (b.endsWith(QStringLiteral("/v1"))) b.chop(3);
  const QUrl url(b + path);
  if (!url.isValid() || (url.scheme() != QLatin1String("http") && url.scheme() != QLatin1String("https")) || url.host().isEmpty())
    throw Error("the server address must look like http://host:port or https://host (got '" + base.toStdString() + "')");
  return url;
}

QString remote_error_message(const QByteArray& body) {
  const json j = json::parse(body.toStdString(), nullptr, false);
  auto text = [](const json& v) -> QString {
    if (v.is_string()) return qs(v.get<std::string>());
    if (v.is_object() && v.contains("message") && v["message"].is_string()) return qs(v["message"].get<std::string>());
    if (!v.is_null() && !v.is_discarded()) return qs(v.dump());
    return {};
  };
  if (j.is_object()) {
    for (const char* key : {"error", "message", "detail"})
      if (auto it = j.find(key); it != j.end()) return text(*it);
  }
  QString plain = QString::fromUtf8(body).simplified();
  if (plain.size() > 200) plain = plain.left(200) + QStringLiteral("…");
  return plain;
}

int inferred_expert_count(int largest_id) {
  for (int n : {8, 16, 32, 40, 60, 64, 128, 160, 256, 384, 512})
    if (largest_id < n) return n;
  return largest_id + 1;
}

// ---- one streaming answer ------------------------------------------------------------------------

// The answer's trace grows from the routing rows as they arrive (moescope-cli serve: a token at a
// time; vLLM and SGLang: all at the end), in the model's shape. The payload's layer axis may count
// the MoE layers or all layers (remote::layer_map).
struct RemoteClient::Answer {
  quint64 id = 0;
  QPointer<QNetworkReply> reply;
  remote::StreamAssembler stream;
  QElapsedTimer clock;
  double first_token_seconds = -1;
  int tokens = 0;
  std::string text;
  std::vector<std::string> pieces;  // the text of each streamed delta (one token each)
  GenerationRequest request;       // as asked (sent again once with fewer tokens if they do not fit)
  bool retried = false;
  bool stopping = false;
  bool thinking = false;            // inside <think> (reasoning deltas so far, no answer yet)
  bool answer_started = false;
  std::string error;                // set: the stream broke; the answer ends with what it has
  std::optional<RoutingTrace> trace;
  std::vector<int> rows;            // payload layer of each MoE layer
  int payload_layers = 0;
  int64_t prompt_rows = 0, generated_rows = 0;  // rows in the trace so far
  bool live_routing = true;         // false: rows came out of order; the trace is built at the end

  double tokens_per_second() const {
    if (tokens < 2 || first_token_seconds < 0) return 0.0;
    const double dt = clock.nsecsElapsed() * 1e-9 - first_token_seconds;
    return dt > 0 ? (tokens - 1) / dt : 0.0;
  }
};


// ---- the client ----------------------------------------------------------------------------------

RemoteClient::RemoteClient(StreamBuffer* buffer, WorkerFlags* flags, QObject* parent)
    : QObject(parent), buffer_(buffer), flags_(flags), stop_poll_(this) {
  stop_poll_.setInterval(kStopPollMs);
  connect(&stop_poll_, &QTimer::timeout, this, [this] {
    if (!answer_ || answer_->stopping || !flags_->stop.load()) return;
    answer_->stopping = true;
    spdlog::info("remote: answer stopped by the user; closing the request");
    if (answer_->reply) answer_->reply->abort();  // finished() follows, handled in onAnswerDone
  });
}

RemoteClient::~RemoteClient() {
  if (answer_ && answer_->reply) {
    answer_->reply->disconnect(this);
    answer_->reply->abort();
  }
}

QNetworkAccessManager& RemoteClient::network() {
  if (!network_) network_ = new QNetworkAccessManager(this);
  return *network_;
}

QNetworkRequest RemoteClient::request_for(const RemoteServer& server, const QString& path) const {
  QNetworkRequest request(remote_endpoint(server.url, path));
  request.setTransferTimeout(std::max(1, server.timeout_ms));
  request.setHeader(QNetworkRequest::ContentTypeHeader, QStringLiteral("application/json"));
  request.setHeader(QNetworkRequest::UserAgentHeader, QStringLiteral("moescope"));
  if (!server.api_key.isEmpty()) request.setRawHeader("Authorization", "Bearer " + server.api_key.toUtf8());
  return request;
}

void RemoteClient::connectTo(quint64 id, const RemoteServer& server) {
  if (connecting_) {
    connecting_->disconnect(this);
    connecting_->abort();
  }
  try {
    QNetworkReply* reply = network().get(request_for(server, QStringLiteral("/v1/models")));
    connecting_ = reply;
    spdlog::info("remote: connecting to {} (model {})", loggable(server.url),
                 server.model.isEmpty() ? std::string("the server's first") : server.model.toStdString());
    connect(reply, &QNetworkReply::finished, this, [this, id, server, reply] { onModels(id, server, reply); });
  } catch (const std::exception& e) {
    emit connectFailed(id, QString::fromUtf8(e.what()));
  }
}

void RemoteClient::onModels(quint64 id, const RemoteServer& server, QNetworkReply* reply) {
  reply->deleteLater();
  if (connecting_ == reply) connecting_ = nullptr;
  const QByteArray body = reply->isOpen() ? reply->readAll() : QByteArray();
  try {
    if (http_status(reply) >= 400) throw Error(http_failure(reply, body).toStdString());
    if (reply->error() != QNetworkReply::NoError) throw Error(network_failure(reply, server.timeout_ms).toStdString());
    const json j = json::parse(body.toStdString(), nullptr, false);
    if (!j.is_object() || !j.contains("data") || !j["data"].is_array())
      throw Error("GET /v1/models did not answer a model list (is this an OpenAI-compatible server?)");
    const json* chosen = nullptr;
    std::string ids;
    for (const json& m : j["data"]) {
      if (!m.is_object() || !m.contains("id") || !m["id"].is_string()) continue;
      const std::string mid = m["id"].get<std::string>();
      ids += (ids.empty() ? "" : ", ") + mid;
      if (!chosen && (server.model.isEmpty() || qs(mid) == server.model)) chosen = &m;
    }
    if (!chosen) {
      if (ids.empty()) throw Error("the server lists no models");
      throw Error("the server has no model '" + server.model.toStdString() + "' (it lists " + ids + ")");
    }

    Connection c;
    c.server = server;
    ModelInfo& info = c.info;
    info.name = qs((*chosen)["id"].get<std::string>());
    c.server.model = info.name;
    info.server = server.url;
    info.backend = QObject::tr("server %1").arg(remote_endpoint(server.url, QString()).toString(QUrl::RemoveUserInfo));
    info.architecture = QStringLiteral("remote");
    if (auto it = chosen->find("max_model_len"); it != chosen->end() && it->is_number_integer())
      info.context_length = it->get<int>();
    c.shape.model = info.name.toStdString();
    if (!server.config.trimmed().isEmpty()) {
      const fs::path path = model_config_path(server.config.trimmed());
      auto spec = std::make_shared<ModelSpec>(load_model_spec(path));
      c.shape = remote::trace_shape_of(*spec);
      c.shape.model = info.name.toStdString();
      info.architecture = qs(spec->architecture);
      if (info.context_length <= 0) info.context_length = spec->max_position;
      info.spec = spec;
      info.shape_source = QObject::tr("config %1").arg(server.config.trimmed());
      const fs::path dir = fs::is_directory(path) ? path : path.parent_path();
      if (fs::exists(dir / "tokenizer.json")) {
        try {
          c.tokenizer = std::make_shared<const Tokenizer>(Tokenizer::from_dir(dir));
        } catch (const std::exception& e) {
          spdlog::warn("remote: the config's tokenizer could not be read ({}); prompt tokens shown without text", e.what());
        }
      }
    } else if (auto g = chosen->find("moescope"); g != chosen->end() && g->is_object()) {
      // moescope-cli serve says its geometry.
      c.shape.n_layers = g->value("n_layers", 0);
      c.shape.n_experts = g->value("n_experts", 0);
      c.shape.top_k = g->value("top_k", 0);
      if (auto ml = g->find("moe_layers"); ml != g->end() && ml->is_array()) c.shape.moe_layers = ml->get<std::vector<int>>();
      info.shape_source = QObject::tr("the server");
    } else {
      info.shape_source = QObject::tr("the responses (no model config: expert count inferred)");
    }
    info.n_layers = c.shape.n_layers;
    info.n_experts = c.shape.n_experts;
    info.top_k = c.shape.top_k;
    info.moe_layers = c.shape.moe_layers;
    spdlog::info("remote: connected to {}, model {} ({} MoE layers, {} experts, top-{}; shape from {})",
                 loggable(server.url), info.name.toStdString(), info.moe_layers.size(), info.n_experts, info.top_k,
                 info.shape_source.toStdString());
    connected_ = std::move(c);
    emit connected(id, connected_->info);
  } catch (const std::exception& e) {
    spdlog::error("remote: connecting to {} failed: {}", loggable(server.url), e.what());
    emit connectFailed(id, QString::fromUtf8(e.what()));
  }
}

void RemoteClient::disconnectServer() {
  if (answer_ && answer_->reply) answer_->reply->abort();
  connected_.reset();
}

void RemoteClient::listModels(const ModelListRequest& request) {
  try {
    QNetworkReply* reply = network().get(request_for(request.server, QStringLiteral("/v1/models")));
    const quint64 id = request.id;
    const int timeout = request.server.timeout_ms;
    connect(reply, &QNetworkReply::finished, this, [this, reply, id, timeout] {
      reply->deleteLater();
      ModelListOutcome out;
      out.id = id;
      const QByteArray body = reply->isOpen() ? reply->readAll() : QByteArray();
      if (http_status(reply) >= 400) {
        out.error = http_failure(reply, body);
      } else if (reply->error() != QNetworkReply::NoError) {
        out.error = network_failure(reply, timeout);
      } else {
        const json j = json::parse(body.toStdString(), nullptr, false);
        if (j.is_object() && j.contains("data") && j["data"].is_array()) {
          for (const json& m : j["data"])
            if (m.is_object() && m.contains("id") && m["id"].is_string()) out.models << qs(m["id"].get<std::string>());
        } else {
          out.error = tr("GET /v1/models did not answer a model list (is this an OpenAI-compatible server?)");
        }
      }
      emit listed(out);
    });
  } catch (const std::exception& e) {
    ModelListOutcome out;
    out.id = request.id;
    out.error = QString::fromUtf8(e.what());
    emit listed(out);
  }
}

void RemoteClient::generate(const GenerationRequest& request) { start(request, false); }

void RemoteClient::start(const GenerationRequest& request, bool retried) {
  if (!connected_) {
    emit failed(request.id, tr("not connected to a server"));
    return;
  }
  if (answer_) {
    emit failed(request.id, tr("the server is still answering"));
    return;
  }
  const Connection& c = *connected_;
  const SamplingSettings& s = request.sampling;
  json body;
  body["model"] = c.server.model.toStdString();
  const bool chat = request.prompt_ids.empty();
  if (chat) body["messages"] = json::parse(request.messages_json);
  else body["prompt"] = request.prompt_ids;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  body["max_tokens"] = s.max_tokens;
  body["temperature"] = s.temperature;
  body["top_p"] = s.top_p;
  if (s.top_k > 0) body["top_k"] = s.top_k;
  if (s.min_p > 0) body["min_p"] = s.min_p;
  if (s.repetition_penalty != 1.0) body["repetition_penalty"] = s.repetition_penalty;
  body["seed"] = request.seed;
  if (!request.stop_at_eos) body["ignore_eos"] = true;
  // SGLang's per-request switch (vLLM returns routing when started with the flag, and ignores it).
  body["return_routed_experts"] = true;
  if (!request.control.empty())
    spdlog::warn("remote: a routing intervention cannot be applied on a server; the answer runs as trained");

  auto a = std::make_unique<Answer>();
  a->id = request.id;
  a->request = request;
  a->retried = retried;
  a->stream = remote::StreamAssembler(remote::RoutingGeometry{c.shape.n_layers, c.shape.top_k});
  Answer* ap = a.get();
  // The answer's text as the chat shows it: a reasoning model's thinking (sent apart as
  // reasoning_content: gpt-oss' analysis channel, <think> sections) inside <think>…</think>, which
  // the chat folds (ui/thinking.h), then the answer.
  auto add = [this, ap](const std::string& shown, const std::string& piece) {
    if (ap->first_token_seconds < 0) ap->first_token_seconds = ap->clock.nsecsElapsed() * 1e-9;
    ++ap->tokens;
    ap->text += shown;
    ap->pieces.push_back(piece);
    buffer_->add_text(QString::fromStdString(shown), 1, ap->tokens_per_second());
  };
  a->stream.on_reasoning = [ap, add](int choice, const std::string& delta) {
    if (choice != 0 || ap->answer_started) return;  // thinking after the answer: kept in the response only
    add(ap->thinking ? delta : "<think>" + delta, delta);
    ap->thinking = true;
  };
  a->stream.on_text = [ap, add](int choice, const std::string& delta) {
    if (choice != 0) return;
    ap->answer_started = true;
    add(ap->thinking ? "</think>\n\n" + delta : delta, delta);
    ap->thinking = false;
  };
  a->stream.on_routing = [this, ap](int choice) {
    if (choice > 0 || !ap->live_routing || !connected_ || connected_->shape.n_experts <= 0) return;
    try {
      extendTrace(*ap, false);
    } catch (const std::exception& e) {
      // Built again from the whole response at the end, where a real problem is reported.
      spdlog::debug("remote: live routing set aside ({}); the trace is built when the answer ends", e.what());
      ap->live_routing = false;
    }
  };

  QNetworkRequest req = request_for(c.server, chat ? QStringLiteral("/v1/chat/completions") : QStringLiteral("/v1/completions"));
  req.setRawHeader("Accept", "text/event-stream");
  a->clock.start();
  a->reply = network().post(req, QByteArray::fromStdString(body.dump()));
  connect(a->reply, &QNetworkReply::readyRead, this, &RemoteClient::onData);
  connect(a->reply, &QNetworkReply::finished, this, &RemoteClient::onAnswerDone);
  answer_ = std::move(a);
  stop_poll_.start();
  spdlog::info("remote: streaming an answer from {} ({} max tokens)", loggable(c.server.url), s.max_tokens);
}

// Appends the response's routing rows that are not yet in the answer's trace (prompt rows, then
// the first choice's generated rows) and hands the new tokens to the stream buffer. Error when the
// rows do not fit the model's shape or come out of order. complete: the response has ended (generated
// rows without prompt rows then start where the usage's prompt count says).
void RemoteClient::extendTrace(Answer& a, bool complete) {
  const Connection& c = *connected_;
  const remote::ResponseRouting& r = a.stream.result();
  const remote::RoutedExperts& P = r.prompt;
  const remote::ChoiceRouting* g = r.choices.empty() ? nullptr : &r.choices.front();
  const remote::RoutedExperts* G = g && g->index == 0 ? &g->routed : nullptr;
  if (P.empty() && (!G || G->empty())) return;
  const remote::RoutedExperts& first = !P.empty() ? P : *G;
  if (!a.trace) {
    std::vector<int> moe_layers;
    remote::layer_map(first.n_layers, c.shape, moe_layers, a.rows);
    a.payload_layers = first.n_layers;
    a.trace.emplace(c.shape.model, c.shape.n_experts, c.shape.top_k > 0 ? c.shape.top_k : first.top_k, moe_layers);
  }
  const size_t before = a.trace->size();
  if (P.n_tokens > a.prompt_rows) {
    if (a.generated_rows > 0) throw Error("prompt rows after generated rows");
    if (P.n_layers != a.payload_layers) throw Error("the payload's layer count changed");
    const std::shared_ptr<const Tokenizer> tok = c.tokenizer;
    remote::append_rows(*a.trace, P, r.prompt_weights, a.prompt_rows, 0, Phase::Prefill, a.rows, r.prompt_token_ids,
                        [&](int64_t t) {
                          if (!tok || size_t(t) >= r.prompt_token_ids.size()) return std::string();
                          const int32_t id = r.prompt_token_ids[size_t(t)];
                          return tok->decode(std::span<const int32_t>(&id, 1));
                        });
    a.prompt_rows = P.n_tokens;
  }
  if (G && G->n_tokens > a.generated_rows) {
    if (G->n_layers != a.payload_layers) throw Error("the payload's layer count changed");
    if (a.prompt_rows == 0 && !complete) throw Error("generated rows before the prompt's");
    // Positions after the prompt's rows, or after the prompt the usage names when no prompt rows came.
    const int64_t pos0 = a.prompt_rows > 0 ? a.prompt_rows : std::max<int64_t>(r.prompt_tokens, 0);
    remote::append_rows(*a.trace, *G, g->weights, a.generated_rows, pos0, Phase::Decode, a.rows, g->token_ids,
                        [&](int64_t t) { return size_t(t) < a.pieces.size() ? a.pieces[size_t(t)] : std::string(); });
    a.generated_rows = G->n_tokens;
  }
  if (a.trace->size() > before) buffer_->add_trace(*a.trace, before);
}

void RemoteClient::onData() {
  Answer* a = answer_.get();
  if (!a || !a->reply || !a->error.empty()) return;
  if (http_status(a->reply) >= 400) return;  // the error body is read whole at the end
  const QByteArray bytes = a->reply->readAll();
  try {
    a->stream.feed(std::string_view(bytes.constData(), size_t(bytes.size())));
  } catch (const std::exception& e) {
    a->error = e.what();
    spdlog::error("remote: {}", a->error);
    a->reply->abort();
  }
}

void RemoteClient::onAnswerDone() {
  Answer* a = answer_.get();
  if (!a) return;
  QNetworkReply* reply = a->reply;
  stop_poll_.stop();
  const QByteArray rest = reply && reply->isOpen() ? reply->readAll() : QByteArray();
  if (reply) reply->deleteLater();
  const int status = reply ? http_status(reply) : 0;
  const int timeout = connected_ ? connected_->server.timeout_ms : 0;

  GenerationSummary summary;
  summary.request = a->id;
  try {
    if (reply && status >= 400) {
      // vLLM's (and serve's) "maximum context length is C tokens. However, you requested N tokens
      // (P in the messages, M in the completion)": the answer gets what room there is, or the
      // conversation no longer fits (the chat offers a new one).
      static const QRegularExpression context_re(
          QStringLiteral("maximum context length is (\\d+) tokens.*?(\\d+) in the messages"));
      const QRegularExpressionMatch m = context_re.match(remote_error_message(rest));
      if (status == 400 && m.hasMatch()) {
        const int context = m.captured(1).toInt(), prompt = m.captured(2).toInt();
        const int room = context - prompt;
        if (!a->retried && room >= kMinAnswerRoom) {
          GenerationRequest again = a->request;
          again.sampling.max_tokens = room;
          spdlog::info("remote: {} prompt tokens of a {}-token context: asking again for at most {} tokens", prompt, context, room);
          answer_.reset();
          start(again, true);
          return;
        }
        const quint64 id = a->id;
        answer_.reset();
        spdlog::warn("remote: the conversation ({} tokens) does not fit the server's context of {}", prompt, context);
        emit contextOverflow(id, prompt, context, -1);
        return;
      }
      failAnswer(http_failure(reply, rest));
      return;
    }
    if (!rest.isEmpty() && a->error.empty()) a->stream.feed(std::string_view(rest.constData(), size_t(rest.size())));
    if (a->stopping) {
      summary.cancelled = true;
      summary.stop_reason = QStringLiteral("cancelled");
    } else if (!a->error.empty()) {
      summary.error = QString::fromStdString(a->error);
    } else if (reply && reply->error() != QNetworkReply::NoError) {
      summary.error = network_failure(reply, timeout);
    } else {
      try {
        a->stream.finish();
      } catch (const std::exception& e) {
        summary.error = QString::fromUtf8(e.what());
      }
    }
    if (!summary.error.isEmpty() && a->tokens == 0) {
      failAnswer(summary.error);  // nothing arrived: there is no partial answer to keep
      return;
    }
  } catch (const std::exception& e) {
    summary.error = QString::fromUtf8(e.what());
  }

  const remote::ResponseRouting& r = a->stream.result();
  const remote::ChoiceRouting* choice = r.choices.empty() ? nullptr : &r.choices.front();
  if (a->thinking) {  // only thinking arrived: the section is closed (the chat shows it folded)
    a->text += "</think>";
    buffer_->add_text(QStringLiteral("</think>"), 0, a->tokens_per_second());
  }
  summary.text = QString::fromStdString(a->text);
  if (summary.stop_reason.isEmpty())
    summary.stop_reason = summary.error.isEmpty() ? stop_reason_of(choice ? choice->finish_reason : std::string()) : QStringLiteral("error");
  // Deltas may carry no text (an end-of-sequence token): the ids or routing rows count better.
  summary.generated_tokens = a->tokens;
  if (choice) {
    summary.generated_tokens = std::max(summary.generated_tokens, int(choice->token_ids.size()));
    summary.generated_tokens = std::max<int>(summary.generated_tokens, int(choice->routed.n_tokens));
  }
  summary.prompt_tokens = int(std::max<int64_t>(0, r.prompt_tokens));
  summary.prefill_seconds = std::max(0.0, a->first_token_seconds);
  summary.tokens_per_second = a->tokens_per_second();

  // The whole answer's routing: the live rows and what only the complete response carries (SGLang's
  // and vLLM's come now).
  if (summary.error.isEmpty() && !summary.cancelled && connected_) {
    if (!r.has_routing()) {
      summary.notice = QString::fromStdString(r.missing_routing_message());
      spdlog::warn("remote: {}", summary.notice.toStdString());
    } else {
      try {
        Connection& c = *connected_;
        const remote::RoutedExperts& P = r.prompt;
        const remote::RoutedExperts* G = choice && choice->index == 0 ? &choice->routed : nullptr;
        if (P.empty() && (!G || G->empty())) throw Error("the routing is not of the first choice");
        const remote::RoutedExperts& first = !P.empty() ? P : *G;
        if (c.shape.n_experts <= 0 || c.shape.moe_layers.empty() || c.shape.top_k <= 0) {
          // No config and the server said nothing: learn the shape from this response.
          int32_t top = 0;
          for (int32_t v : P.ids) top = std::max(top, v);
          if (G) for (int32_t v : G->ids) top = std::max(top, v);
          if (c.shape.moe_layers.empty()) {
            for (int l = 0; l < first.n_layers; ++l) c.shape.moe_layers.push_back(l);
            c.shape.n_layers = first.n_layers;
          }
          if (c.shape.top_k <= 0) c.shape.top_k = first.top_k;
          c.shape.n_experts = std::max(c.shape.n_experts, inferred_expert_count(int(top)));
          c.info.n_layers = c.shape.n_layers;
          c.info.moe_layers = c.shape.moe_layers;
          c.info.top_k = c.shape.top_k;
          c.info.n_experts = c.shape.n_experts;
          spdlog::info("remote: routing shape learned from the response: {} layers, top-{}, {} experts (inferred)",
                       c.shape.moe_layers.size(), c.shape.top_k, c.shape.n_experts);
          emit shapeLearned(c.info);
        }
        // The rows not yet in the live trace (all of them for vLLM and SGLang, which send routing
        // at the end); from scratch when the live rows were set aside.
        if (!a->live_routing || (a->trace && a->trace->n_experts() != c.shape.n_experts)) {
          a->trace.reset();
          a->prompt_rows = a->generated_rows = 0;
        }
        extendTrace(*a, true);
        summary.trace = std::make_shared<const RoutingTrace>(std::move(*a->trace));
      } catch (const std::exception& e) {
        summary.notice = tr("The server's routing could not be read: %1").arg(QString::fromUtf8(e.what()));
        spdlog::error("remote: {}", summary.notice.toStdString());
      }
    }
  } else if (a->trace && a->trace->size() > 0) {
    summary.trace = std::make_shared<const RoutingTrace>(*a->trace);  // what arrived before the end
  }
  if (!summary.error.isEmpty()) spdlog::error("remote: the answer ended early: {}", summary.error.toStdString());
  spdlog::info("remote: answer: {} tokens ({}), first token after {:.3f} s, {:.1f} tokens/s", summary.generated_tokens,
               summary.stop_reason.toStdString(), summary.prefill_seconds, summary.tokens_per_second);
  endAnswer(std::move(summary));
}

void RemoteClient::endAnswer(GenerationSummary summary) {
  answer_.reset();
  emit finished(summary);
}

void RemoteClient::failAnswer(const QString& message) {
  const quint64 id = answer_ ? answer_->id : 0;
  spdlog::error("remote: the answer failed: {}", message.toStdString());
  answer_.reset();
  emit failed(id, message);
}

}  // namespace moescope::ui
