//! A transaction for every incoming request of a tower service: axum, tonic and hyper-util
//! servers (feature `tower`; feature `axum` adds route names).
//!
//! [`ApmLayer`] continues the caller's trace from `traceparent`/`tracestate`, names the
//! transaction by the route (axum's `MatchedPath`), the gRPC method, or Elastic's
//! `GET unknown route`, and attaches it around every poll of the handler's future and of the
//! response body, on whichever worker thread polls them. It ends when the response body is
//! finished, fails, or is dropped (the client went away), and when the handler's future is
//! dropped before it answered (outcome `unknown`, result `client disconnected`).
//!
//! Handler code reaches its transaction with [`crate::current_transaction`]; spans it starts,
//! and spans of work it hands on under `#[propagate]` or [`crate::Context::wrap`], are the
//! transaction's children.
//!
//! ```
//! use apm_runtime::integrations::tower::{ApmLayer, ApmRequestBody};
//! use apm_runtime::{report::MemorySink, Agent};
//! use tower_service::Service;
//!
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let sink = MemorySink::new();
//! let agent = Agent::builder().sink(sink.clone()).build().unwrap();
//! let _default = agent.set_default(); // ApmLayer::new() takes this agent
//!
//! // Any `Service<http::Request<ApmRequestBody<B>>, Response = http::Response<_>>` (axum's
//! // routes and tonic's server take any body): here a plain function.
//! let handler = tower_service_fn(|_req: http::Request<ApmRequestBody<()>>| async {
//!     apm_runtime::current_transaction().set_label("cache", "miss");
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("hi")))
//! });
//! let mut service = tower_layer::Layer::layer(&ApmLayer::new(), handler);
//! let response = service.call(http::Request::get("/users/7").body(()).unwrap()).await.unwrap();
//! drop(response); // the body dropped: the transaction ends
//!
//! agent.flush(std::time::Duration::from_secs(5));
//! let tx = &sink.transactions()[0];
//! assert_eq!(tx["name"], "GET unknown route");
//! assert_eq!(tx["result"], "HTTP 2xx");
//! assert_eq!(tx["context"]["tags"]["cache"], "miss");
//! # });
//! # #[derive(Clone)]
//! # struct ServiceFn<F>(F);
//! # fn tower_service_fn<F>(f: F) -> ServiceFn<F> { ServiceFn(f) }
//! # impl<F: FnMut(R) -> Fut, R, Fut: std::future::Future<Output = Result<T, E>>, T, E> Service<R> for ServiceFn<F> {
//! #     type Response = T; type Error = E; type Future = Fut;
//! #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> { std::task::Poll::Ready(Ok(())) }
//! #     fn call(&mut self, r: R) -> Fut { (self.0)(r) }
//! # }
//! ```

mod capture;
mod grpc;
mod request;

pub use capture::ApmRequestBody;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};

use crate::config::Config;
use crate::model::event::Outcome;
use crate::record::context::Context;
use crate::record::recorder::{default_recorder, Recorder};
use crate::record::transaction::{Transaction, TransactionBuilder};

/// A `tower::Layer` that records a transaction for every request of the service it wraps.
///
/// Usable wherever tower layers are: `axum::Router::layer` (add it last, so it wraps the
/// routes and sees their `MatchedPath`), `tonic::transport::Server::builder().layer(..)`, or
/// around any `Service<http::Request<ApmRequestBody<B>>>` served by hyper-util.
///
/// ```
/// let layer = apm_runtime::integrations::tower::ApmLayer::new();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct ApmLayer {
    recorder: Option<Arc<Recorder>>,
}

impl ApmLayer {
    /// A layer reporting to the agent installed now: the calling thread's default
    /// ([`crate::Agent::set_default`]) or the process's ([`crate::init`],
    /// [`crate::Agent::install_global`]). With none installed yet, each request looks again.
    ///
    /// ```
    /// let layer = apm_runtime::integrations::tower::ApmLayer::new();
    /// # let _ = layer;
    /// ```
    pub fn new() -> ApmLayer {
        ApmLayer { recorder: default_recorder() }
    }
}

impl Default for ApmLayer {
    fn default() -> Self {
        ApmLayer::new()
    }
}

impl std::fmt::Debug for ApmLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApmLayer").field("agent", &self.recorder.is_some()).finish()
    }
}

impl<S> tower_layer::Layer<S> for ApmLayer {
    type Service = ApmService<S>;

    fn layer(&self, inner: S) -> ApmService<S> {
        ApmService { inner, recorder: self.recorder.clone() }
    }
}

/// The service [`ApmLayer`] wraps around another.
///
/// ```
/// use apm_runtime::integrations::tower::{ApmLayer, ApmService};
/// # #[derive(Clone)] struct Inner;
/// let service: ApmService<Inner> = tower_layer::Layer::layer(&ApmLayer::new(), Inner);
/// # let _ = service;
/// ```
#[derive(Clone)]
pub struct ApmService<S> {
    inner: S,
    recorder: Option<Arc<Recorder>>,
}

impl<S> std::fmt::Debug for ApmService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApmService").field("agent", &self.recorder.is_some()).finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ApmService<S>
where
    S: tower_service::Service<http::Request<ApmRequestBody<ReqBody>>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = http::Response<ApmBody<ResBody>>;
    type Error = S::Error;
    type Future = ApmFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<ReqBody>) -> ApmFuture<S::Future> {
        let recorder = self.recorder.clone().or_else(default_recorder);
        // The configuration in force (central configuration may change it between requests).
        let Some((rec, config)) = recorder
            .map(|r| {
                let config = r.live.load_full();
                (r, config)
            })
            .filter(|(r, config)| r.enabled && config.recording() && !request::ignored(&req, config))
        else {
            let req = req.map(|body| ApmRequestBody::new(body, None));
            return ApmFuture { inner: self.inner.call(req), state: None };
        };
        let grpc = grpc::is_grpc(req.headers());
        crate::model::metadata::set_framework(request::framework(&req, grpc));
        let mut tx = TransactionBuilder::new(Some(&rec), request::name(&req, grpc, &config))
            .with_type("request")
            .continue_from(req.headers())
            .start();
        let body = capture::body(&req, &config);
        tx.set_request(|| {
            let raw = body.clone().map(|b| b as Arc<dyn crate::model::event::RawBody>);
            request::request_context(&req, &config, raw)
        });
        let req = req.map(|inner| ApmRequestBody::new(inner, body));
        let context = tx.context();
        // The inner `call` runs under the transaction too: services may start work there.
        let inner = context.in_scope(|| self.inner.call(req));
        ApmFuture { inner, state: Some(Box::new(State { tx, context, config, grpc })) }
    }
}

/// What a traced request carries from its start to the end of its response body. Boxed: the
/// future of an ignored or unrecorded request stays the inner one's size plus a pointer.
struct State {
    tx: Transaction,
    context: Context,
    /// The configuration in force when the request came: its response is recorded by it too.
    config: Arc<Config>,
    grpc: bool,
}

pin_project_lite::pin_project! {
    /// The response future of an [`ApmService`]: the handler's future with its transaction
    /// attached around every poll.
    ///
    /// ```
    /// fn is_future<F: std::future::Future>() {}
    /// is_future::<apm_runtime::integrations::tower::ApmFuture<std::future::Ready<Result<http::Response<String>, ()>>>>();
    /// ```
    pub struct ApmFuture<F> {
        #[pin]
        inner: F,
        state: Option<Box<State>>,
    }

    impl<F> PinnedDrop for ApmFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before the handler answered: the client went away (or the server shut
            // down). Nothing says whether the work would have succeeded.
            if let Some(state) = this.project().state.take() {
                let State { mut tx, .. } = *state;
                tx.set_outcome(Outcome::Unknown);
                if !tx.has_result() {
                    tx.set_result("client disconnected");
                }
                tx.end();
            }
        }
    }
}

impl<F, ResBody, E> Future for ApmFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body,
{
    type Output = Result<http::Response<ApmBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(state) = this.state.as_mut() else {
            return this.inner.poll(cx).map_ok(|res| res.map(|inner| ApmBody { inner, state: None }));
        };
        let polled = {
            let _attached = state.context.attach();
            let unwinding = EndOnUnwind(this.state);
            let polled = this.inner.poll(cx);
            std::mem::forget(unwinding);
            polled
        };
        let Poll::Ready(result) = polled else { return Poll::Pending };
        let mut state = this.state.take().expect("state is taken only when ready or unwinding");
        if let Some(tx_shared) = state.context.active.as_ref() {
            // A panic a catch-panic layer inside stopped left no guard to report it.
            crate::record::error::report_caught_panic(&tx_shared.tx, tx_shared.tx.id);
        }
        match result {
            Ok(res) => {
                let status = res.status();
                if let Some(context) = state.tx.context_mut() {
                    context.response = Some(request::response_context(&res, &state.config));
                }
                if state.grpc {
                    // A trailers-only response (an error before any message) has its status here.
                    if let Some(code) = grpc::status(res.headers()) {
                        set_grpc_status(&mut state.tx, code);
                    }
                } else {
                    if !state.tx.has_result() {
                        state.tx.set_result(request::result(status));
                    }
                    state.tx.set_outcome(request::outcome(status));
                }
                Poll::Ready(Ok(res.map(|inner| ApmBody { inner, state: Some(state) })))
            }
            Err(e) => {
                // The service failed without a response: the server answers with an error of
                // its own (hyper closes the connection, tonic sends a status).
                state.tx.set_outcome(Outcome::Failure);
                if !state.tx.has_result() {
                    state.tx.set_result("HTTP 5xx");
                }
                Poll::Ready(Err(e))
            }
        }
    }
}

/// Ends the transaction as failed when the handler panics through `poll` (no catch-panic
/// layer inside): the server drops the future only after the unwinding stopped, when the panic
/// can no longer be told from a disconnect. Forgotten when `poll` returns.
struct EndOnUnwind<'a>(&'a mut Option<Box<State>>);

impl Drop for EndOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(state) = self.0.take() {
            let State { mut tx, .. } = *state;
            if !tx.has_result() {
                tx.set_result("HTTP 5xx");
            }
            // Ending while the thread panics marks it failed and reports the panic.
            tx.end();
        }
    }
}

fn set_grpc_status(tx: &mut Transaction, code: u32) {
    if !tx.has_result() {
        tx.set_result(grpc::name(code));
    }
    tx.set_outcome(grpc::outcome(code));
}

pin_project_lite::pin_project! {
    /// The response body of an [`ApmService`]: ends the request's transaction when it is
    /// finished or dropped, and reads a gRPC status from its trailers.
    ///
    /// ```
    /// fn is_body<B: http_body::Body>() {}
    /// is_body::<apm_runtime::integrations::tower::ApmBody<String>>();
    /// ```
    pub struct ApmBody<B> {
        #[pin]
        inner: B,
        state: Option<Box<State>>,
    }

    impl<B> PinnedDrop for ApmBody<B> {
        fn drop(this: Pin<&mut Self>) {
            // Dropped before its end: the client went away mid-response (or the server stopped
            // sending). The status stands; `finished: false` tells the rest.
            if let Some(state) = this.project().state.take() {
                end(*state, false);
            }
        }
    }
}

fn end(state: State, finished: bool) {
    let State { mut tx, grpc, .. } = state;
    if let Some(response) = tx.context_mut().and_then(|c| c.response.as_mut()) {
        response.finished = finished;
    }
    if grpc && !tx.has_result() {
        // No grpc-status was ever seen: the stream was cut.
        tx.set_outcome(Outcome::Unknown);
    }
    tx.end();
}

impl<B: http_body::Body> http_body::Body for ApmBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = match this.state.as_ref() {
            // A streamed body runs application code (a stream's `poll_next`): under the
            // transaction too.
            Some(state) => state.context.in_scope(|| this.inner.as_mut().poll_frame(cx)),
            None => this.inner.as_mut().poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(state)) = (frame.trailers_ref(), this.state.as_mut()) {
                    if let Some(code) = grpc::status(trailers).filter(|_| state.grpc) {
                        set_grpc_status(&mut state.tx, code);
                    }
                }
                // A server drops a body that says it is at its end without polling it again
                // (hyper does, for a body of known length): that one is finished here.
                if this.inner.is_end_stream() {
                    if let Some(state) = this.state.take() {
                        end(*state, true);
                    }
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(mut state) = this.state.take() {
                    state.tx.set_outcome(Outcome::Failure);
                    end(*state, false);
                }
            }
            Poll::Ready(None) => {
                if let Some(state) = this.state.take() {
                    end(*state, true);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
