//! Prometheus metrics (contract §7): requests by developer, api, call, decision and status;
//! latency histograms for the whole request and for cPanel; rate-limit hits; policy reloads;
//! token issues and failures; open connections and the connections each serving thread
//! accepted; audit and circuit state read at scrape time.
//!
//! Label cardinality is bounded: `developer` is an authenticated, known developer or `-`, and
//! at most [`MAX_CALL_LABELS`] distinct `call` values are kept (then `other`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Distinct `call` label values kept before new ones are counted as `other`.
pub const MAX_CALL_LABELS: usize = 2000;

/// Built per request without allocating: interned `Arc<str>` names and static strings.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    developer: Arc<str>,
    api: &'static str,
    call: Arc<str>,
    decision: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeveloperLabel {
    developer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: String,
}

/// One finished request, as the pipeline saw it.
#[derive(Clone, Copy, Debug)]
pub struct Observed<'a> {
    pub developer: Option<&'a str>,
    pub api: Option<&'static str>,
    pub call: Option<&'a str>,
    pub allowed: bool,
    pub status: u16,
    pub duration: Duration,
}

/// The registry and every series.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Histogram,
    upstream_duration: Histogram,
    rate_limited: Family<DeveloperLabel, Counter>,
    policy_reloads: Family<ResultLabel, Counter>,
    tokens_issued: Counter,
    token_failures: Counter,
    open_connections: Gauge,
    parked_connections: Gauge,
    worker_connections: Family<WorkerLabel, Counter>,
    store: crate::store::StoreMetrics,
    /// Interned `call` label values (at most [`MAX_CALL_LABELS`]).
    calls: Mutex<HashSet<Arc<str>>>,
    /// Interned `developer` label values (authenticated developers, bounded by the policies).
    developers: Mutex<HashSet<Arc<str>>>,
    audit_ok: AtomicBool,
    policies_ok: AtomicBool,
    dash: Arc<str>,
    other: Arc<str>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cpgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by developer, api, call, decision and status",
            requests.clone(),
        );
        let buckets = || exponential_buckets(0.0005, 2.0, 16);
        let duration = Histogram::new(buckets());
        registry.register(
            "request_duration_seconds",
            "Whole request time in cpgate",
            duration.clone(),
        );
        let upstream_duration = Histogram::new(buckets());
        registry.register(
            "upstream_duration_seconds",
            "Time until cPanel's response head",
            upstream_duration.clone(),
        );
        let rate_limited = Family::<DeveloperLabel, Counter>::default();
        registry.register("rate_limited", "Calls refused by the rate limit", rate_limited.clone());
        let policy_reloads = Family::<ResultLabel, Counter>::default();
        registry.register("policy_reloads", "Policy reloads by result", policy_reloads.clone());
        let tokens_issued = Counter::default();
        registry.register(
            "tokens_issued",
            "Access tokens issued by /oauth/token",
            tokens_issued.clone(),
        );
        let token_failures = Counter::default();
        registry.register("token_failures", "Failed /oauth/token requests", token_failures.clone());
        let open_connections = Gauge::default();
        registry.register("open_connections", "Open client connections", open_connections.clone());
        let parked_connections = Gauge::default();
        registry.register(
            "parked_connections",
            "Idle keep-alive connections parked without HTTP buffers",
            parked_connections.clone(),
        );
        let worker_connections = Family::<WorkerLabel, Counter>::default();
        registry.register(
            "worker_connections",
            "Client connections accepted, by serving thread",
            worker_connections.clone(),
        );
        let store = crate::store::StoreMetrics::default();
        registry.register(
            "store_errors",
            "Failed operations on the shared Redis store",
            store.errors.clone(),
        );
        registry.register(
            "store_fallbacks",
            "Rate-limit decisions made without the shared store (local fallback or 503)",
            store.fallbacks.clone(),
        );
        registry.register("store_up", "1 while the shared Redis store answers", store.up.clone());
        Self {
            registry,
            requests,
            duration,
            upstream_duration,
            rate_limited,
            policy_reloads,
            tokens_issued,
            token_failures,
            open_connections,
            parked_connections,
            worker_connections,
            store,
            calls: Mutex::new(HashSet::new()),
            developers: Mutex::new(HashSet::new()),
            audit_ok: AtomicBool::new(true),
            policies_ok: AtomicBool::new(true),
            dash: Arc::from("-"),
            other: Arc::from("other"),
        }
    }

    /// Counts one finished request.
    pub fn observe(&self, o: &Observed<'_>) {
        let labels = RequestLabels {
            developer: o
                .developer
                .map_or_else(|| Arc::clone(&self.dash), |d| self.developer_label(d)),
            api: o.api.unwrap_or("-"),
            call: o.call.map_or_else(|| Arc::clone(&self.dash), |c| self.call_label(c)),
            decision: if o.allowed { "allow" } else { "deny" },
            status: o.status,
        };
        self.requests.get_or_create(&labels).inc();
        self.duration.observe(o.duration.as_secs_f64());
    }

    fn call_label(&self, call: &str) -> Arc<str> {
        let Ok(mut seen) = self.calls.lock() else {
            return Arc::clone(&self.other);
        };
        if let Some(known) = seen.get(call) {
            return Arc::clone(known);
        }
        if seen.len() >= MAX_CALL_LABELS {
            return Arc::clone(&self.other);
        }
        let label: Arc<str> = Arc::from(call);
        seen.insert(Arc::clone(&label));
        label
    }

    fn developer_label(&self, developer: &str) -> Arc<str> {
        let Ok(mut seen) = self.developers.lock() else {
            return Arc::from(developer);
        };
        if let Some(known) = seen.get(developer) {
            return Arc::clone(known);
        }
        let label: Arc<str> = Arc::from(developer);
        seen.insert(Arc::clone(&label));
        label
    }

    pub fn upstream_time(&self, d: Duration) {
        self.upstream_duration.observe(d.as_secs_f64());
    }

    pub fn rate_limited(&self, developer: &str) {
        self.rate_limited
            .get_or_create(&DeveloperLabel {
                developer: developer.to_owned(),
            })
            .inc();
    }

    /// Counts a reload; readiness fails until a reload succeeds again.
    pub fn policy_reload(&self, ok: bool) {
        self.policies_ok.store(ok, Ordering::Relaxed);
        let result = if ok { "ok" } else { "error" };
        self.policy_reloads
            .get_or_create(&ResultLabel { result: result.into() })
            .inc();
    }

    /// The shared store's series, handed to the Redis connection (see `store`).
    pub fn store(&self) -> crate::store::StoreMetrics {
        self.store.clone()
    }

    pub fn token_issued(&self) {
        self.tokens_issued.inc();
    }

    pub fn token_failed(&self) {
        self.token_failures.inc();
    }

    pub fn connection_opened(&self) {
        self.open_connections.inc();
    }

    pub fn connection_closed(&self) {
        self.open_connections.dec();
    }

    /// The accepted-connections counter of serving thread `worker`, fetched once per thread
    /// (counting is then one atomic add per connection).
    pub fn worker_connections(&self, worker: usize) -> Counter {
        let worker = u32::try_from(worker).unwrap_or(u32::MAX);
        self.worker_connections.get_or_create(&WorkerLabel { worker }).clone()
    }

    /// A connection was parked (`true`) or woke up or closed while parked (`false`).
    pub fn connection_parked(&self, parked: bool) {
        if parked {
            self.parked_connections.inc();
        } else {
            self.parked_connections.dec();
        }
    }

    /// Whether the last audit append succeeded (readiness).
    pub fn audit_result(&self, ok: bool) {
        self.audit_ok.store(ok, Ordering::Relaxed);
    }

    /// Whether the last policy reload succeeded.
    pub fn policies_ok(&self) -> bool {
        self.policies_ok.load(Ordering::Relaxed)
    }

    pub fn audit_ok(&self) -> bool {
        self.audit_ok.load(Ordering::Relaxed)
    }

    /// The text exposition, with the scrape-time series appended.
    pub fn render(&self, scrape: &Scrape<'_>) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode_registry(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let _ = writeln!(
            out,
            "# HELP cpgate_audit_write_errors Audit writes or syncs that failed."
        );
        let _ = writeln!(out, "# TYPE cpgate_audit_write_errors counter");
        let _ = writeln!(out, "cpgate_audit_write_errors_total {}", scrape.audit_write_errors);
        let _ = writeln!(
            out,
            "# HELP cpgate_audit_chain_seq Sequence number of the audit chain head."
        );
        let _ = writeln!(out, "# TYPE cpgate_audit_chain_seq gauge");
        let _ = writeln!(out, "cpgate_audit_chain_seq {}", scrape.audit_seq);
        let _ = writeln!(
            out,
            "# HELP cpgate_audit_chain_head Hash of the audit chain head (anchor it elsewhere)."
        );
        let _ = writeln!(out, "# TYPE cpgate_audit_chain_head gauge");
        let _ = writeln!(out, "cpgate_audit_chain_head{{hash=\"{}\"}} 1", scrape.audit_head);
        let _ = writeln!(
            out,
            "# HELP cpgate_upstream_circuit_open 1 while calls to the account are paused."
        );
        let _ = writeln!(out, "# TYPE cpgate_upstream_circuit_open gauge");
        for (account, open) in &scrape.circuits {
            let _ = writeln!(
                out,
                "cpgate_upstream_circuit_open{{account=\"{account}\"}} {}",
                u8::from(*open)
            );
        }
        out.push_str("# EOF\n");
        out
    }
}

/// Values read from the rest of the app at scrape time.
#[derive(Debug)]
pub struct Scrape<'a> {
    pub audit_write_errors: u64,
    pub audit_seq: u64,
    pub audit_head: &'a str,
    pub circuits: Vec<(&'a str, bool)>,
}
