#include "ui/views/register_views.h"

#include "ui/view_registry.h"
#include "ui/views/coactivation_view.h"
#include "ui/views/expert_colouring.h"
#include "ui/views/inspector_view.h"
#include "ui/views/kv_view.h"
#include "ui/views/load_view.h"
#include "ui/views/performance_view.h"
#include "ui/views/routing_map_view.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
template <class View>
std::function<QWidget*(const ViewContext&, QWidget*)> make() {
  return [](const ViewContext& context, QWidget* parent) -> QWidget* {
    TraceModel* model = context.traces;
    if (!model) model = new TraceModel(parent);  // none handed over: an empty, standalone view
    return new View(model, parent);
  };
}
}  // namespace

void register_views(ViewRegistry& r) {
  r.add({QStringLiteral("routing"), QObject::tr("Routing map"),
         QObject::tr("Which experts every token was routed to, per layer"), Qt::BottomDockWidgetArea, true,
         make<RoutingMapView>()});
  r.add({QStringLiteral("inspector"), QObject::tr("Token inspector"),
         QObject::tr("One token's path through every MoE layer"), Qt::RightDockWidgetArea, false, make<InspectorView>()});
  r.add({QStringLiteral("colouring"), QObject::tr("Expert colours"),
         QObject::tr("The answer coloured by each token's top expert; toggle colouring of the chat"),
         Qt::RightDockWidgetArea, false, [](const ViewContext& context, QWidget* parent) -> QWidget* {
           auto* v = static_cast<ExpertColouringView*>(make<ExpertColouringView>()(context, parent));
           v->setChat(context.chat);
           return v;
         }});
  r.add({QStringLiteral("load"), QObject::tr("Load balance"),
         QObject::tr("Tokens per expert against the uniform share, and imbalance metrics"), Qt::BottomDockWidgetArea, true,
         make<LoadView>()});
  r.add({QStringLiteral("coactivation"), QObject::tr("Co-activation"),
         QObject::tr("How often experts are chosen together"), Qt::RightDockWidgetArea, false, make<CoactivationView>()});
  r.add({QStringLiteral("kv"), QObject::tr("KV cache"),
         QObject::tr("Cache fill, bytes per layer, blocks and MLA compression"), Qt::RightDockWidgetArea, false,
         make<KvView>()});
  r.add({QStringLiteral("performance"), QObject::tr("Performance"),
         QObject::tr("Prefill and decode tokens/s and time per token"), Qt::RightDockWidgetArea, false,
         make<PerformanceView>()});
}

}  // namespace moescope::ui
