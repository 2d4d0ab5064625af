//! A local OpenAI-compatible server for the `infer` and `serve` tests, started by the test itself
//! on 127.0.0.1 (an ephemeral port). Per request, a test's script decides what it does: answer,
//! wait first, return an HTTP error (429 with `Retry-After`, 500, 401, ...), send malformed JSON,
//! stream SSE events with pauses between them, or drop the connection without answering. Every
//! request is logged for assertions. [`http`] is the tests' own blocking HTTP client (hyper's).

#![allow(dead_code)] // Each test file uses a different part of it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;

/// Writes `llm.json` into `dir` with three candidates of service `LOCAL` on `server`: `small`
/// (the smallest; it has no `api_endpoint`, so the config's is used), `mid` and `large` (the most
/// expensive: the first fallback), and returns the config's first lines: `data_path.llm_data`
/// and `api_endpoint`.
pub fn three_candidates(dir: &std::path::Path, server: &MockServer) -> String {
    let url = &server.base_url;
    let llm = serde_json::json!({
        "small": {"size": "1B", "input_price": 0.1, "output_price": 0.2, "model": "org/small", "service": "LOCAL"},
        "mid": {"size": "8B", "input_price": 0.5, "output_price": 0.5, "model": "org/mid", "service": "LOCAL",
                "api_endpoint": url},
        "large": {"size": "70B", "input_price": 1.0, "output_price": 2.0, "model": "org/large", "service": "LOCAL",
                  "api_endpoint": url},
    });
    std::fs::write(dir.join("llm.json"), llm.to_string()).expect("write llm data");
    format!("data_path:\n  llm_data: {}\napi_endpoint: {url}\n", dir.join("llm.json").display())
}

/// What the server does with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with a chat completion: content `answer from {model}: {query}`, usage 10 prompt + 5
    /// completion tokens.
    Answer,
    /// 200 with this content and no usage.
    Text(String),
    /// An HTTP error status with a body, and optionally `Retry-After` (seconds).
    Status { status: u16, retry_after: Option<u64>, body: String },
    /// 200 with a body that is not JSON.
    Malformed,
    /// Close the connection without answering.
    Drop,
    /// Wait, then do the rest.
    Delay(Duration, Box<Reply>),
    /// 200 with `text/event-stream`: each text after its pause (in milliseconds), as it is.
    Sse(Vec<(u64, String)>),
}

impl Reply {
    /// An HTTP error status with a short JSON body.
    pub fn status(status: u16) -> Reply {
        Reply::Status {
            status,
            retry_after: None,
            body: format!("{{\"error\": {{\"message\": \"status {status}\"}}}}"),
        }
    }

    /// 429 with `Retry-After: secs`.
    pub fn rate_limited(secs: u64) -> Reply {
        Reply::Status { status: 429, retry_after: Some(secs), body: "{\"error\": {\"message\": \"slow down\"}}".into() }
    }

    /// This reply after `ms` milliseconds.
    pub fn after_ms(ms: u64, reply: Reply) -> Reply {
        Reply::Delay(Duration::from_millis(ms), Box::new(reply))
    }
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The `model` field (the API model id).
    pub model: String,
    /// The text of the first message.
    pub content: String,
    /// The `Authorization` header, if any.
    pub authorization: Option<String>,
    /// The whole request body (`null` when it is not JSON).
    pub body: serde_json::Value,
    /// 1 for the first request with this (model, content), 2 for the second, ...
    pub nth: usize,
}

type Script = dyn Fn(&Seen) -> Reply + Send + Sync;

struct Shared {
    script: Box<Script>,
    log: Mutex<Vec<Seen>>,
    counts: Mutex<HashMap<(String, String), usize>>,
}

/// A running server. It stops when the test process ends.
pub struct MockServer {
    /// `http://127.0.0.1:PORT/v1`: the base URL to put in `api_endpoint`.
    pub base_url: String,
    shared: Arc<Shared>,
}

impl MockServer {
    /// Starts a server whose replies `script` chooses, request by request.
    pub fn start(script: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> MockServer {
        let shared = Arc::new(Shared {
            script: Box::new(script),
            log: Mutex::new(Vec::new()),
            counts: Mutex::new(HashMap::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("address").port();
        let app = axum::Router::new().route("/v1/chat/completions", post(handle)).with_state(Arc::clone(&shared));
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().expect("tokio runtime");
        std::thread::spawn(move || {
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                axum::serve(listener, app).await.expect("serve");
            });
        });
        MockServer { base_url: format!("http://127.0.0.1:{port}/v1"), shared }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        self.shared.log.lock().expect("log").clone()
    }

    /// How many requests carried `content` (to any model).
    pub fn count(&self, content: &str) -> usize {
        self.requests().iter().filter(|s| s.content == content).count()
    }
}

async fn handle(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let content = request["messages"][0]["content"].as_str().unwrap_or_default().to_owned();
    let authorization = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let nth = {
        let mut counts = shared.counts.lock().expect("counts");
        let n = counts.entry((model.clone(), content.clone())).or_insert(0);
        *n += 1;
        *n
    };
    let seen = Seen { model, content, authorization, body: request.clone(), nth };
    shared.log.lock().expect("log").push(seen.clone());
    let mut reply = (shared.script)(&seen);
    while let Reply::Delay(wait, then) = reply {
        tokio::time::sleep(wait).await;
        reply = *then;
    }
    let json = |status: u16, body: String| {
        Response::builder()
            .status(StatusCode::from_u16(status).expect("status"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("response")
    };
    match reply {
        Reply::Answer => json(
            200,
            serde_json::json!({
                "id": "chatcmpl-test", "object": "chat.completion", "model": seen.model,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": format!("answer from {}: {}", seen.model, seen.content)}}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
            })
            .to_string(),
        ),
        Reply::Text(text) => json(
            200,
            serde_json::json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": text}}]}).to_string(),
        ),
        Reply::Status { status, retry_after, body } => {
            let mut response = json(status, body);
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            response
        }
        Reply::Sse(events) => {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            tokio::spawn(async move {
                for (pause, text) in events {
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    if tx.send(Bytes::from(text)).await.is_err() {
                        return;
                    }
                }
            });
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/event-stream")
                .body(Body::new(ChannelBody(rx)))
                .expect("response")
        }
        Reply::Malformed => json(200, "{\"choices\": [{\"message\": {\"content\": \"trunc".into()),
        // Unwinding out of the handler ends the connection's task: the socket closes with no
        // response. `resume_unwind` skips the panic hook, so nothing is printed.
        Reply::Drop => std::panic::resume_unwind(Box::new("drop the connection")),
        Reply::Delay(..) => unreachable!("delays are waited above"),
    }
}

/// A response body fed through a channel: each message is sent as soon as it is received.
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|next| next.map(|bytes| Ok(hyper::body::Frame::data(bytes))))
    }
}

/// How long one request of [`Http`], or one read of its body, may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// A blocking HTTP/1.1 client for the tests: hyper's pooled client on a runtime of its own. Every
/// call is bounded by [`HTTP_TIMEOUT`]; a failure panics, naming the URL.
pub struct Http {
    runtime: tokio::runtime::Runtime,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Full<Bytes>,
    >,
}

/// The tests' one [`Http`] client, shared by every test of the process.
pub fn http() -> &'static Http {
    static HTTP: OnceLock<Http> = OnceLock::new();
    HTTP.get_or_init(|| {
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("tokio runtime");
        let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(hyper_util::client::legacy::connect::HttpConnector::new());
        Http { runtime, client }
    })
}

/// A response whose body is read on demand.
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    body: hyper::body::Incoming,
}

impl Http {
    /// `method url` with `headers` and `body`; the response once its header is in.
    pub fn request(&self, method: &str, url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> HttpResponse {
        let mut request = hyper::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(http_body_util::Full::new(body.into())).expect("a valid request");
        let response = self
            .runtime
            .block_on(async { tokio::time::timeout(HTTP_TIMEOUT, self.client.request(request)).await })
            .unwrap_or_else(|_| panic!("{method} {url}: no answer within {HTTP_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let (parts, body) = response.into_parts();
        HttpResponse { status: parts.status.as_u16(), headers: parts.headers, body }
    }

    /// `GET url`.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.request("GET", url, headers, Bytes::new())
    }
}

impl HttpResponse {
    /// Header `name`, when it is there and is text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The next chunk of the body as it arrives; `None` at its end (or when it breaks off).
    pub fn chunk(&mut self) -> Option<Bytes> {
        use http_body_util::BodyExt;
        loop {
            let frame = http().runtime.block_on(async { tokio::time::timeout(HTTP_TIMEOUT, self.body.frame()).await });
            match frame.expect("a chunk within the timeout")? {
                Ok(frame) => match frame.into_data() {
                    Ok(data) if !data.is_empty() => return Some(data),
                    _ => continue,
                },
                Err(_) => return None,
            }
        }
    }

    /// The rest of the body, as text (invalid UTF-8 replaced).
    pub fn text(mut self) -> String {
        let mut bytes = Vec::new();
        while let Some(chunk) = self.chunk() {
            bytes.extend_from_slice(&chunk);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
