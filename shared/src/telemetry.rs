//! Structured JSON logs. Every line carries the span fields of the request it belongs to
//! (`request_id`, `route`, `vendor_id`), set once by `http::handle`.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .with_writer(writer)
        .try_init();
}
