//! `ApmLayer` on a real tonic server on loopback (multi-thread tokio runtime), driven by tonic's
//! client over HTTP/2: gRPC method names, results and outcomes from `grpc-status` (in the
//! headers of a trailers-only answer, or in the trailers of a streamed one), continued traces,
//! and spans under the call's transaction.
//!
//! No protoc: the service is written by hand, the way tonic's generated code is, with a codec
//! that passes message bytes through (gRPC framing is tonic's either way).

mod support;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use apm_runtime::integrations::tower::ApmLayer;
use apm_runtime::{current_transaction, span, Agent};
use bytes::{Buf, BufMut};
use futures_util::Stream;
use serde_json::Value;
use support::{memory_agent, named, schemas, wait_for_transactions};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Code, Status};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Messages are their bytes.
#[derive(Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;
    fn encoder(&mut self) -> Raw {
        Raw
    }
    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let mut v = vec![0; src.remaining()];
        src.copy_to_slice(&mut v);
        Ok(Some(v))
    }
}

#[span]
fn lookup(what: &str) -> Result<Vec<u8>, Status> {
    match what {
        "missing" => Err(Status::not_found("no such thing")),
        "broken" => Err(Status::internal("database down")),
        other => Ok(format!("hello {other}").into_bytes()),
    }
}

struct Say;

impl tonic::server::UnaryService<Vec<u8>> for Say {
    type Response = Vec<u8>;
    type Future = BoxFuture<Result<tonic::Response<Vec<u8>>, Status>>;
    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        Box::pin(async move {
            let what = String::from_utf8(request.into_inner()).unwrap();
            current_transaction().set_label("what", what.clone());
            lookup(&what).map(tonic::Response::new)
        })
    }
}

struct Count;

impl tonic::server::ServerStreamingService<Vec<u8>> for Count {
    type Response = Vec<u8>;
    type ResponseStream = BoxStream<Vec<u8>>;
    type Future = BoxFuture<Result<tonic::Response<BoxStream<Vec<u8>>>, Status>>;
    fn call(&mut self, request: tonic::Request<Vec<u8>>) -> Self::Future {
        Box::pin(async move {
            let fail = request.into_inner() == b"fail";
            let mut items: Vec<Result<Vec<u8>, Status>> = (0..3u8).map(|i| Ok(vec![i])).collect();
            if fail {
                items.push(Err(Status::unavailable("backend went away")));
            }
            let stream: BoxStream<Vec<u8>> = Box::pin(futures_util::stream::iter(items));
            Ok(tonic::Response::new(stream))
        })
    }
}

/// The service as tonic's code generator would write it.
#[derive(Clone)]
struct Greeter;

impl tonic::server::NamedService for Greeter {
    const NAME: &'static str = "test.Greeter";
}

impl tower_service::Service<http::Request<tonic::body::Body>> for Greeter {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut TaskContext<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(Raw);
            Ok(match req.uri().path() {
                "/test.Greeter/Say" => grpc.unary(Say, req).await,
                "/test.Greeter/Count" => grpc.server_streaming(Count, req).await,
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn serve(rt: &tokio::runtime::Runtime, agent: &Agent) -> SocketAddr {
    let layer = {
        let _default = agent.set_default();
        ApmLayer::new()
    };
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    rt.spawn(async move {
        tonic::transport::Server::builder()
            .layer(layer)
            .add_service(Greeter)
            .serve_with_incoming(incoming)
            .await
            .unwrap()
    });
    addr
}

async fn client(addr: SocketAddr) -> tonic::client::Grpc<tonic::transport::Channel> {
    let channel = tonic::transport::Channel::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    tonic::client::Grpc::new(channel)
}

async fn say(addr: SocketAddr, what: &str, traceparent: Option<&str>) -> Result<Vec<u8>, Status> {
    let mut grpc = client(addr).await;
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(what.as_bytes().to_vec());
    if let Some(tp) = traceparent {
        request.metadata_mut().insert("traceparent", tp.parse().unwrap());
    }
    grpc.unary(request, "/test.Greeter/Say".parse().unwrap(), Raw).await.map(|r| r.into_inner())
}

async fn count(addr: SocketAddr, what: &str) -> (Vec<Vec<u8>>, Option<Status>) {
    let mut grpc = client(addr).await;
    grpc.ready().await.unwrap();
    let request = tonic::Request::new(what.as_bytes().to_vec());
    let mut stream =
        grpc.server_streaming(request, "/test.Greeter/Count".parse().unwrap(), Raw).await.unwrap().into_inner();
    let mut items = Vec::new();
    loop {
        match stream.message().await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return (items, None),
            Err(status) => return (items, Some(status)),
        }
    }
}

#[test]
fn unary_calls_are_named_by_method_with_results_and_outcomes_from_grpc_status() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(&rt, &agent);
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    assert_eq!(rt.block_on(say(addr, "ada", Some(tp))).unwrap(), b"hello ada");
    assert_eq!(rt.block_on(say(addr, "missing", None)).unwrap_err().code(), Code::NotFound);
    assert_eq!(rt.block_on(say(addr, "broken", None)).unwrap_err().code(), Code::Internal);

    let txs = wait_for_transactions(&agent, &sink, 3);
    assert_eq!(txs.len(), 3);
    let by_label = |what: &str| -> &Value {
        let found: Vec<&Value> = txs.iter().filter(|t| t["context"]["tags"]["what"] == what).collect();
        assert_eq!(found.len(), 1, "{txs:#?}");
        found[0]
    };
    let ok = by_label("ada");
    assert_eq!(ok["name"], "/test.Greeter/Say");
    assert_eq!(ok["type"], "request");
    assert_eq!((&ok["result"], &ok["outcome"]), (&"OK".into(), &"success".into()));
    assert_eq!(ok["trace_id"], "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(ok["parent_id"], "b7ad6b7169203331");
    assert_eq!(ok["context"]["request"]["http_version"], "2");
    assert_eq!(ok["context"]["request"]["method"], "POST");
    assert_eq!(ok["context"]["request"]["socket"]["remote_address"], "127.0.0.1", "tonic's TcpConnectInfo");
    assert_eq!(ok["context"]["response"]["finished"], true);
    let missing = by_label("missing");
    assert_eq!((&missing["result"], &missing["outcome"]), (&"NOT_FOUND".into(), &"success".into()));
    let broken = by_label("broken");
    assert_eq!((&broken["result"], &broken["outcome"]), (&"INTERNAL".into(), &"failure".into()));

    // Each call's `lookup` span is under its own transaction.
    let spans = sink.spans();
    assert_eq!(spans.len(), 3);
    for tx in [ok, missing, broken] {
        let span = spans.iter().find(|s| s["transaction_id"] == tx["id"]).unwrap();
        assert_eq!(span["name"], "lookup");
        assert_eq!(span["parent_id"], tx["id"]);
    }
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn a_streamed_answer_takes_its_status_from_the_trailers() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(&rt, &agent);
    let (items, status) = rt.block_on(count(addr, "ok"));
    assert_eq!((items.len(), status.map(|s| s.code())), (3, None));
    let txs = wait_for_transactions(&agent, &sink, 1);
    let ok = named(&txs, "/test.Greeter/Count");
    assert_eq!((&ok["result"], &ok["outcome"]), (&"OK".into(), &"success".into()));
    assert_eq!(ok["context"]["response"]["finished"], true);

    sink.clear();
    let (items, status) = rt.block_on(count(addr, "fail"));
    assert_eq!((items.len(), status.map(|s| s.code())), (3, Some(Code::Unavailable)));
    let txs = wait_for_transactions(&agent, &sink, 1);
    let failed = named(&txs, "/test.Greeter/Count");
    assert_eq!((&failed["result"], &failed["outcome"]), (&"UNAVAILABLE".into(), &"failure".into()));
    assert_eq!(failed["context"]["response"]["status_code"], 200, "HTTP said 200; the trailers said otherwise");
    schemas().check_ndjson(&sink.ndjson());
}

#[test]
fn an_unknown_method_is_unimplemented_and_not_a_failure() {
    let (agent, sink) = memory_agent(|c| c);
    let rt = runtime();
    let addr = serve(&rt, &agent);
    let status = rt.block_on(async {
        let mut grpc = client(addr).await;
        grpc.ready().await.unwrap();
        grpc.unary::<Vec<u8>, Vec<u8>, Raw>(tonic::Request::new(vec![]), "/test.Greeter/Nope".parse().unwrap(), Raw)
            .await
            .unwrap_err()
    });
    assert_eq!(status.code(), Code::Unimplemented);
    let txs = wait_for_transactions(&agent, &sink, 1);
    let tx = named(&txs, "/test.Greeter/Nope");
    assert_eq!((&tx["result"], &tx["outcome"]), (&"UNIMPLEMENTED".into(), &"success".into()));
}
