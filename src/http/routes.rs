//! Where a request goes: the probes, `/metrics`, a tier's messages or pages, or 404 and 405.
//!
//! Every tier serves `GET /healthz`, `GET /readyz` and `GET /metrics` (`HEAD`
//! too); a relay or a sink takes messages `POST`ed to any other path (with
//! `FAULTS=on`, but `/fault`: `GET`, `POST` and `DELETE` there set and show
//! its standing fault, see [`crate::observe::fault`]), and the sender serves its pages. [`route`] decides from the method and the
//! path alone, before any body is read, and [`path_class`] names the route
//! for `three_tier_http_requests_total`.

use std::sync::Arc;

use tiny_http::Method;

use crate::http::envelope::Envelope;
use crate::record::message::Pages;

/// What a tier serves besides the probes and `/metrics`.
pub enum Serves {
    /// Messages, `POST`ed to any other path, each in the envelope of its tier (relay, sink).
    Messages(Arc<Envelope>),
    /// Pages, at the paths they know (sender).
    Pages(Arc<dyn Pages>),
}

/// Where a request goes, decided from its method and path alone; a message
/// or a page carries what serves it.
pub enum Route<'s, 'u> {
    Health,
    Ready,
    Metrics,
    ReservedWrongMethod,
    Message(&'s Envelope),
    MessageWrongMethod,
    /// `/fault` with faults on, and the query.
    Fault(&'s Envelope, &'u str),
    /// The pages, and the path without its query.
    Page(&'s dyn Pages, &'u str),
    NotFound,
}

pub fn route<'s, 'u>(method: &Method, url: &'u str, serves: &'s Serves) -> Route<'s, 'u> {
    let (path, query) = url.split_once('?').unwrap_or((url, ""));
    let is_get = matches!(method, Method::Get | Method::Head);
    let fault_method = is_get || matches!(method, Method::Post | Method::Delete);
    match (path, serves) {
        (crate::observe::fault::PATH, Serves::Messages(envelope))
            if envelope.faults().enabled() && fault_method =>
        {
            Route::Fault(envelope, query)
        }
        ("/healthz", _) if is_get => Route::Health,
        ("/readyz", _) if is_get => Route::Ready,
        ("/metrics", _) if is_get => Route::Metrics,
        ("/healthz" | "/readyz" | "/metrics", _) => Route::ReservedWrongMethod,
        (_, Serves::Messages(handler)) if *method == Method::Post => Route::Message(handler),
        (_, Serves::Messages(_)) => Route::MessageWrongMethod,
        (_, Serves::Pages(pages)) if is_get => Route::Page(&**pages, path),
        (_, Serves::Pages(_)) => Route::NotFound,
    }
}

/// The `path` label of `three_tier_http_requests_total` for a route.
pub fn path_class(route: &Route) -> &'static str {
    match route {
        Route::Health => "healthz",
        Route::Ready => "readyz",
        Route::Metrics => "metrics",
        Route::Message(_) | Route::MessageWrongMethod => "message",
        Route::Fault(..) => "fault",
        Route::Page(..) => "page",
        Route::ReservedWrongMethod | Route::NotFound => "other",
    }
}

#[cfg(test)]
mod test {
    use super::*;

    use crate::config::LogFormat;
    use crate::record::logger::Logger;
    use crate::record::message::{Message, MessageHandler, Reply, Stamped};
    use crate::role::Role;

    #[test]
    fn routes() {
        struct Nothing;
        impl MessageHandler for Nothing {
            fn handle<'a>(&'a self, _: &Message<'a>, _: &Stamped) -> Reply<'a> {
                Reply::text(200, "")
            }
        }
        impl Pages for Nothing {
            fn page(&self, _: &str) -> Option<Reply<'_>> {
                None
            }
        }
        /// The route's name, and the path a page route carries.
        fn named(route: Route) -> String {
            match route {
                Route::Health => "health".into(),
                Route::Ready => "ready".into(),
                Route::Metrics => "metrics".into(),
                Route::ReservedWrongMethod => "reserved, wrong method".into(),
                Route::Message(_) => "message".into(),
                Route::MessageWrongMethod => "message, wrong method".into(),
                Route::Fault(_, query) => format!("fault {query}"),
                Route::Page(_, path) => format!("page {path}"),
                Route::NotFound => "not found".into(),
            }
        }
        let logger = Logger::new(
            Role::Sink,
            None,
            [127, 0, 0, 1].into(),
            LogFormat::Text,
            false,
        );
        let envelope = Envelope::new(
            Role::Sink,
            [127, 0, 0, 1].into(),
            Vec::new(),
            Arc::new(logger.unwrap()),
            Arc::new(crate::observe::metrics::Metrics::new(Role::Sink)),
            Arc::new(crate::observe::fault::Faults::new(
                Role::Sink,
                false,
                4,
                std::time::Duration::from_secs(10),
            )),
            Arc::new(Nothing),
        );
        let messages = Serves::Messages(Arc::new(envelope));
        let faulty = Serves::Messages(Arc::new(Envelope::new(
            Role::Relay,
            [127, 0, 0, 1].into(),
            Vec::new(),
            Arc::new(
                Logger::new(
                    Role::Relay,
                    None,
                    [127, 0, 0, 1].into(),
                    LogFormat::Text,
                    false,
                )
                .unwrap(),
            ),
            Arc::new(crate::observe::metrics::Metrics::new(Role::Relay)),
            Arc::new(crate::observe::fault::Faults::new(
                Role::Relay,
                true,
                4,
                std::time::Duration::from_secs(10),
            )),
            Arc::new(Nothing),
        )));
        let pages = Serves::Pages(Arc::new(Nothing));
        let cases = [
            (Method::Get, "/healthz", &messages, "health"),
            (Method::Head, "/readyz?x", &pages, "ready"),
            (Method::Get, "/metrics", &pages, "metrics"),
            (
                Method::Post,
                "/metrics",
                &messages,
                "reserved, wrong method",
            ),
            (
                Method::Post,
                "/healthz",
                &messages,
                "reserved, wrong method",
            ),
            (Method::Post, "/relay.php", &messages, "message"),
            (Method::Post, "/", &messages, "message"),
            (
                Method::Get,
                "/relay.php",
                &messages,
                "message, wrong method",
            ),
            (Method::Get, "/", &pages, "page /"),
            (Method::Get, "/flow?x=1", &pages, "page /flow"),
            (Method::Post, "/relay.php", &pages, "not found"),
            // /fault is a message path unless faults are on.
            (Method::Post, "/fault?status=503", &messages, "message"),
            (Method::Delete, "/fault", &messages, "message, wrong method"),
            (
                Method::Post,
                "/fault?status=503",
                &faulty,
                "fault status=503",
            ),
            (Method::Delete, "/fault", &faulty, "fault "),
            (Method::Get, "/fault", &faulty, "fault "),
            (Method::Put, "/fault", &faulty, "message, wrong method"),
            (Method::Post, "/sink.php", &faulty, "message"),
        ];
        for (method, url, serves, expected) in cases {
            assert_eq!(
                named(route(&method, url, serves)),
                expected,
                "{method} {url}"
            );
        }
    }
}
