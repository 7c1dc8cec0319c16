//! The transaction the calling code runs under, reachable from anywhere its context was
//! carried: a handler under the tower layer, a `#[transaction]` fn, a pool thread under
//! `#[propagate]`.

use std::borrow::Cow;
use std::sync::Arc;

use crate::model::event::{LabelValue, Outcome, User};
use crate::model::ids::{SpanId, TraceId};
use crate::record::context::Context;
use crate::record::transaction::TxShared;

/// A handle to the transaction the calling code runs under: set its name, result, outcome,
/// labels, user and custom context, read its ids. Made by [`current_transaction`].
///
/// The handle outlives nothing: it holds the transaction's shared part, and what is set after
/// the transaction ended is ignored. Setters on a handle outside any transaction do nothing.
/// What it sets wins over what the transaction's owner set (an integration's defaults such as
/// the tower layer's `HTTP 2xx`), whichever is set last.
///
/// ```
/// use apm_runtime::{current_transaction, Agent, Outcome, User, report::MemorySink};
///
/// let sink = MemorySink::new();
/// let agent = Agent::builder().sink(sink.clone()).build().unwrap();
/// let tx = agent.transaction("GET /users/{id}").with_type("request").start();
/// let ctx = tx.context();
/// std::thread::spawn(move || {
///     let _g = ctx.attach();
///     let current = current_transaction();
///     current.set_user(User::default().id("42").username("ada"));
///     current.set_label("plan", "pro");
///     current.set_result("cache hit");
///     current.set_outcome(Outcome::Success);
///     current.set_custom("cart", serde_json::json!({"items": 3}));
/// })
/// .join()
/// .unwrap();
/// tx.end();
/// agent.flush(std::time::Duration::from_secs(5));
/// let recorded = &sink.transactions()[0];
/// assert_eq!(recorded["context"]["user"]["username"], "ada");
/// assert_eq!(recorded["context"]["custom"]["cart"]["items"], 3);
/// assert_eq!(recorded["result"], "cache hit");
/// ```
#[derive(Clone, Default)]
pub struct CurrentTransaction {
    tx: Option<Arc<TxShared>>,
}

/// The transaction the calling code runs under, wherever its context was carried (an empty
/// handle outside any transaction).
///
/// ```
/// let tx = apm_runtime::Transaction::start("job");
/// let _active = tx.attach();
/// let current = apm_runtime::current_transaction();
/// assert_eq!(current.id(), tx.id());
/// ```
pub fn current_transaction() -> CurrentTransaction {
    CurrentTransaction { tx: Context::current().active.map(|a| a.tx) }
}

impl CurrentTransaction {
    /// `false` outside any transaction (or when no agent records): the setters do nothing.
    ///
    /// ```
    /// assert!(!apm_runtime::current_transaction().is_some());
    /// ```
    pub fn is_some(&self) -> bool {
        self.tx.is_some()
    }

    /// The trace id.
    ///
    /// ```
    /// assert!(apm_runtime::current_transaction().trace_id().is_none());
    /// ```
    pub fn trace_id(&self) -> Option<TraceId> {
        self.tx.as_ref().map(|t| t.trace_id)
    }

    /// The transaction id.
    ///
    /// ```
    /// assert!(apm_runtime::current_transaction().id().is_none());
    /// ```
    pub fn id(&self) -> Option<SpanId> {
        self.tx.as_ref().map(|t| t.id)
    }

    /// Whether the transaction is sampled (records spans, labels and context).
    ///
    /// ```
    /// assert!(!apm_runtime::current_transaction().is_sampled());
    /// ```
    pub fn is_sampled(&self) -> bool {
        self.tx.as_ref().is_some_and(|t| t.sampled)
    }

    /// The name as it stands (renamed or as started).
    ///
    /// ```
    /// assert!(apm_runtime::current_transaction().name().is_none());
    /// ```
    pub fn name(&self) -> Option<String> {
        self.tx.as_ref().map(|t| t.current_name().into_owned())
    }

    /// Renames the transaction (errors reported after this carry the new name).
    ///
    /// ```
    /// apm_runtime::current_transaction().set_name("GET /users/{id}");
    /// ```
    pub fn set_name(&self, name: impl Into<Cow<'static, str>>) {
        if let Some(t) = &self.tx {
            let name = name.into();
            t.with_overrides(|o| o.name = Some(name));
        }
    }

    /// Sets the `result` (`"HTTP 2xx"`, `"success"`, …).
    ///
    /// ```
    /// apm_runtime::current_transaction().set_result("partial");
    /// ```
    pub fn set_result(&self, result: impl Into<Cow<'static, str>>) {
        if let Some(t) = &self.tx {
            let result = result.into();
            t.with_overrides(|o| o.result = Some(result));
        }
    }

    /// Sets the `outcome` (a panic still makes it `failure`).
    ///
    /// ```
    /// apm_runtime::current_transaction().set_outcome(apm_runtime::Outcome::Failure);
    /// ```
    pub fn set_outcome(&self, outcome: Outcome) {
        if let Some(t) = &self.tx {
            t.with_overrides(|o| o.outcome = Some(outcome));
        }
    }

    /// Adds a label (`context.tags`); nothing on an unsampled transaction.
    ///
    /// ```
    /// apm_runtime::current_transaction().set_label("tenant", "acme");
    /// ```
    pub fn set_label(&self, key: impl Into<Cow<'static, str>>, value: impl Into<LabelValue>) {
        if let Some(t) = self.tx.as_ref().filter(|t| t.sampled) {
            let (key, value) = (key.into(), value.into());
            t.with_overrides(|o| o.labels.push((key, value)));
        }
    }

    /// Sets `context.user`; nothing on an unsampled transaction.
    ///
    /// ```
    /// apm_runtime::current_transaction().set_user(apm_runtime::User::default().id("42"));
    /// ```
    pub fn set_user(&self, user: User) {
        if let Some(t) = self.tx.as_ref().filter(|t| t.sampled) {
            t.with_overrides(|o| o.user = Some(user));
        }
    }

    /// Sets `context.custom[key]` to any JSON value (replacing an earlier one of the same key);
    /// nothing on an unsampled transaction.
    ///
    /// ```
    /// apm_runtime::current_transaction().set_custom("retries", 3);
    /// ```
    pub fn set_custom(&self, key: impl Into<String>, value: impl Into<serde_json::Value>) {
        if let Some(t) = self.tx.as_ref().filter(|t| t.sampled) {
            let (key, value) = (key.into(), value.into());
            t.with_overrides(|o| match o.custom.iter_mut().find(|(k, _)| *k == key) {
                Some(entry) => entry.1 = value,
                None => o.custom.push((key, value)),
            });
        }
    }
}

impl std::fmt::Debug for CurrentTransaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tx {
            None => f.write_str("CurrentTransaction(none)"),
            Some(t) => write!(f, "CurrentTransaction(trace {} id {})", t.trace_id, t.id),
        }
    }
}
