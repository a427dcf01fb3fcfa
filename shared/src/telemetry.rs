//! Structured JSON logs. Every line carries the span fields of the request it belongs to
//! (`request_id`, `route`, `vendor_id`), set once by `http::handle`.

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the JSON subscriber (level from `RUST_LOG`, default `info`) on stdout, where
/// Lambda collects it. Safe to call twice.
pub fn init() {
    init_with_writer(std::io::stdout);
}

/// The same subscriber writing elsewhere (the tests capture every line to scan it).
pub fn init_with_writer<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    // `Targets` (`info`, `warn,bestow=debug`) rather than `EnvFilter`: no regex engine to link
    // into every function or to compile at each cold start.
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|directives| directives.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let json = tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(writer);
    let _ = tracing_subscriber::registry().with(json.with_filter(filter)).try_init();
}
