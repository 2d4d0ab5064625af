//! `serve`'s HTTP API, in OpenAI's wire format: `POST /v1/chat/completions`, `GET /v1/models`,
//! `GET /health`, `GET /ready` and `GET /metrics`; client-key authentication of `/v1/*` and
//! `/metrics`; errors as `{"error": {"message", "type", "param", "code"}}`.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use llmrouter_core::{Candidate, Candidates, QueryInput, RouteDecision, Router};
use serde_json::{Map, Value, json};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::limits::{Gate, Held, RateLimit};
use super::metrics::{Metrics, Reason, Usage};
use super::settings::RouteOn;
use super::sse::Relay;
use crate::client::{CallError, Client as ModelClient, REDACTED, Reply, fallback_order};

/// Everything a request needs, shared by all of them.
pub struct AppState {
    /// The router, built once.
    pub router: Arc<dyn Router>,
    /// Its name (a `model` that routes, like `auto`).
    pub router_name: String,
    /// The candidates of `llm_data`.
    pub candidates: Candidates,
    /// The model client.
    pub upstream: ModelClient,
    /// The text routed on.
    pub route_on: RouteOn,
    /// Client keys; empty: no authentication.
    pub keys: Vec<String>,
    /// Other models tried when a routed request's model fails.
    pub max_fallbacks: usize,
    /// Unix time the server started (`created` of `/v1/models`).
    pub started: u64,
    /// The concurrency limit of chat requests, and its queue.
    pub gate: Gate,
    /// The per-client rate limit, when set.
    pub rate_limit: Option<RateLimit>,
    /// The series of `/metrics`.
    pub metrics: Metrics,
    /// Write one access-log line per request on standard error.
    pub access_log: bool,
    /// Put the routed text in the access log.
    pub log_prompts: bool,
}

/// What answering a chat request found out, for the metrics: put in the response's extensions
/// by the handler, read when the response body is done.
#[derive(Clone, Default)]
pub struct Outcome {
    /// The router chose the model.
    routed: bool,
    /// The candidate that answered, or the last one tried.
    model: Option<usize>,
    /// When the first upstream attempt started.
    upstream_started: Option<Instant>,
    /// How long the upstream calls took, when the answer is already whole (not streamed).
    upstream_took: Option<Duration>,
    /// The usage of a whole answer.
    usage: Option<Usage>,
    /// Where a streamed answer's relay puts its usage.
    stream_usage: Option<Arc<Mutex<Option<Usage>>>>,
    /// Routing time (routed requests).
    route_us: Option<u64>,
    /// The text routed on, only with `serve.log_prompts`.
    prompt: Option<String>,
}

/// Counts a request and writes its access-log line once its response body is done (or dropped).
struct Finish {
    state: Arc<AppState>,
    /// A chat request (the only ones in the request metrics).
    chat: bool,
    method: String,
    path: String,
    arrived: Instant,
    status: u16,
    outcome: Outcome,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let o = &self.outcome;
        let metrics = &self.state.metrics;
        let upstream = o.upstream_took.or_else(|| o.upstream_started.map(|s| s.elapsed()));
        let streamed =
            o.stream_usage.as_ref().and_then(|u| *u.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        let usage = o.usage.or(streamed);
        if self.chat {
            if let Some(took) = upstream {
                metrics.upstream.observe(took);
            }
            metrics.request(o.routed, o.model, self.status, usage);
            metrics.in_flight(-1);
        }
        if !self.state.access_log {
            return;
        }
        let model = o.model.and_then(|m| self.state.candidates.all().get(m)).map(|c| c.name.as_str());
        let mut line = json!({
            "time": rfc3339(SystemTime::now()),
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "router": o.routed.then_some(self.state.router_name.as_str()),
            "model": model,
            "route_us": o.route_us,
            "upstream_ms": upstream.map(|d| d.as_millis() as u64),
            "total_ms": self.arrived.elapsed().as_millis() as u64,
            "prompt_tokens": usage.map(|u| u.prompt),
            "completion_tokens": usage.map(|u| u.completion),
        });
        if let (Some(prompt), Some(map)) = (&o.prompt, line.as_object_mut()) {
            map.insert("prompt".to_owned(), Value::String(prompt.clone()));
        }
        // The path is the client's: no key it may hold reaches the log.
        let text = redact_client_keys(&self.state.upstream.redact(&line.to_string()), &self.state.keys);
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{text}");
    }
}

/// `time` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn rfc3339(time: SystemTime) -> String {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_millis()
    )
}

/// Which client sent a request: the position of its key in [`AppState::keys`] (0 without keys).
#[derive(Debug, Clone, Copy)]
pub struct Client(pub usize);

/// `Retry-After` of a 503 when the server is full, in seconds.
const OVERLOADED_RETRY_AFTER: u32 = 1;

/// The application: routes, authentication and the body limit.
pub fn app(state: Arc<AppState>, max_body_bytes: usize) -> axum::Router {
    let v1 = axum::Router::new()
        .route(
            "/v1/chat/completions",
            post(chat_completions)
                .layer(middleware::from_fn_with_state(Arc::clone(&state), limit_concurrency))
                .layer(middleware::from_fn_with_state(Arc::clone(&state), limit_rate)),
        )
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), authenticate));
    axum::Router::new()
        .merge(v1)
        .route("/health", get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .fallback(|| async {
            error(StatusCode::NOT_FOUND, "invalid_request_error", "not_found", None, "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                "method_not_allowed",
                None,
                "method not allowed",
            )
        })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .with_state(state)
}

/// A JSON response.
fn json_response(status: StatusCode, value: &Value) -> Response {
    let mut response = Response::new(Body::from(value.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An error in OpenAI's shape.
fn error(status: StatusCode, kind: &str, code: &str, param: Option<&str>, message: &str) -> Response {
    json_response(status, &json!({"error": {"message": message, "type": kind, "param": param, "code": code}}))
}

/// A 400 about the request's field `param`.
fn bad_request(param: &str, message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_request", Some(param), message)
}

/// With client keys, `/v1/*` needs `Authorization: Bearer KEY`; each key is compared in
/// constant time, and every key is compared.
async fn authenticate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    if state.keys.is_empty() {
        request.extensions_mut().insert(Client(0));
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    // Every key is compared, and the matching one's position chosen, without a branch on a key.
    let (valid, position) = given.map_or((false, 0), |given| {
        let (ok, position) =
            state.keys.iter().enumerate().fold((subtle::Choice::from(0), 0u64), |(ok, position), (i, key)| {
                let same = key.as_bytes().ct_eq(given.as_bytes());
                (ok | same, u64::conditional_select(&position, &(i as u64), same))
            });
        (bool::from(ok), position as usize)
    });
    if valid {
        request.extensions_mut().insert(Client(position));
        return next.run(request).await;
    }
    let message = match given {
        None => "missing API key: send `Authorization: Bearer <key>`",
        Some(_) => "invalid API key",
    };
    state.metrics.reject(Reason::Auth);
    let mut response = error(StatusCode::UNAUTHORIZED, "invalid_request_error", "invalid_api_key", None, message);
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// At most `serve.max_concurrency` chat requests in flight and `serve.max_queue` waiting; beyond
/// that, 503 with `Retry-After`. The place is held until the response body is done.
async fn limit_concurrency(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let Some(permit) = state.gate.enter().await else {
        let mut response = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "server_error",
            "overloaded",
            None,
            "the server is at its concurrency limit and its queue is full: retry later",
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(OVERLOADED_RETRY_AFTER));
        return response;
    };
    let (parts, body) = next.run(request).await.into_parts();
    Response::from_parts(parts, Body::new(Held::new(body, permit)))
}

/// Every request: a chat request is in flight until its body is done, and counted with its time
/// to first byte and refusal reason; then (see [`Finish`]) its status, model, upstream time and
/// tokens, and every request's access-log line.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let arrived = Instant::now();
    let chat = request.uri().path() == "/v1/chat/completions";
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if chat {
        state.metrics.in_flight(1);
    }
    let response = next.run(request).await;
    let status = response.status();
    if chat && status.is_success() {
        state.metrics.ttfb.observe(arrived.elapsed());
    }
    // On the chat path each of these statuses has one cause (a failed upstream is a 502).
    let reason = match status {
        StatusCode::TOO_MANY_REQUESTS => Some(Reason::RateLimit),
        StatusCode::SERVICE_UNAVAILABLE => Some(Reason::Overloaded),
        StatusCode::PAYLOAD_TOO_LARGE => Some(Reason::BodyTooLarge),
        StatusCode::BAD_REQUEST => Some(Reason::BadRequest),
        StatusCode::NOT_FOUND => Some(Reason::ModelNotFound),
        _ => None,
    };
    if let Some(reason) = reason.filter(|_| chat) {
        state.metrics.reject(reason);
    }
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap_or_default();
    let (parts, body) = response.into_parts();
    let finish = Finish { state, chat, method, path, arrived, status: status.as_u16(), outcome };
    Response::from_parts(parts, Body::new(Held::new(body, finish)))
}

/// `GET /metrics`, in Prometheus' text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut response = Response::new(Body::from(state.metrics.render(state.gate.queued())));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}

/// `serve.rate_limit_rpm` chat requests a minute per client key; beyond, 429 with `Retry-After`.
async fn limit_rate(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(limit) = &state.rate_limit {
        let client = request.extensions().get::<Client>().map_or(0, |c| c.0);
        if let Err(wait) = limit.take(client, Instant::now()) {
            let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
            let message = format!("rate limit reached for this key: retry in {secs} s");
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "requests", "rate_limit_exceeded", None, &message);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
            return response;
        }
    }
    next.run(request).await
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    json_response(StatusCode::OK, &json!({"status": "ready", "router": state.router_name}))
}

/// `GET /v1/models`: `auto`, the router, then every candidate.
async fn models(State(state): State<Arc<AppState>>) -> Response {
    let model =
        |id: &str, owned_by: &str| json!({"id": id, "object": "model", "created": state.started, "owned_by": owned_by});
    let mut data = vec![model("auto", "llmrouter"), model(&state.router_name, "llmrouter")];
    for c in state.candidates.all() {
        data.push(model(&c.name, c.service.as_deref().unwrap_or("llmrouter")));
    }
    json_response(StatusCode::OK, &json!({"object": "list", "data": data}))
}

/// A checked chat request.
struct ChatRequest {
    /// The body as sent, to be forwarded with `model` replaced.
    body: Map<String, Value>,
    /// `model` as sent.
    model: String,
    /// `stream`.
    stream: bool,
}

/// Checks the fields the gateway reads; every other field passes through untouched. The error
/// is the 400 itself, answered at once (hence not boxed).
#[allow(clippy::result_large_err)]
fn parse_request(bytes: &[u8]) -> Result<ChatRequest, Response> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_eof() { "the body ends too early" } else { "the body is not valid JSON" };
        error(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_json", None, &format!("{code}: {e}"))
    })?;
    let Value::Object(body) = value else {
        return Err(bad_request("body", "the body must be a JSON object"));
    };
    let model = match body.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_owned(),
        Some(Value::String(_)) | None => {
            return Err(bad_request("model", "`model` is required: \"auto\", the router's name or a candidate"));
        }
        Some(_) => return Err(bad_request("model", "`model` must be a string")),
    };
    match body.get("messages") {
        None => return Err(bad_request("messages", "`messages` is required")),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(bad_request("messages", "`messages` must hold at least one message"));
        }
        Some(Value::Array(list)) => {
            for (i, m) in list.iter().enumerate() {
                let Some(m) = m.as_object() else {
                    return Err(bad_request(&format!("messages[{i}]"), &format!("`messages[{i}]` must be an object")));
                };
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err(bad_request(
                        &format!("messages[{i}].role"),
                        &format!("`messages[{i}].role` is required and must be a string"),
                    ));
                }
                if !matches!(m.get("content"), None | Some(Value::Null | Value::String(_) | Value::Array(_))) {
                    return Err(bad_request(
                        &format!("messages[{i}].content"),
                        &format!("`messages[{i}].content` must be a string or a list of parts"),
                    ));
                }
            }
        }
        Some(_) => return Err(bad_request("messages", "`messages` must be a list of messages")),
    }
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad_request("stream", "`stream` must be true or false")),
    };
    Ok(ChatRequest { body, model, stream })
}

/// The text of one message: its string content, or the `text` of its parts.
fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("\n")
        }
        _ => String::new(),
    }
}

/// The text the router decides on.
fn routed_text(body: &Map<String, Value>, route_on: RouteOn) -> Option<String> {
    let messages = body.get("messages")?.as_array()?;
    match route_on {
        RouteOn::LastUser => {
            messages.iter().rev().find(|m| m.get("role").and_then(Value::as_str) == Some("user")).map(message_text)
        }
        RouteOn::Conversation => {
            let lines: Vec<String> = messages
                .iter()
                .map(|m| format!("{}: {}", m.get("role").and_then(Value::as_str).unwrap_or(""), message_text(m)))
                .collect();
            Some(lines.join("\n"))
        }
    }
}

/// `POST /v1/chat/completions`.
async fn chat_completions(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => {
            let status = rejection.status();
            let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_body" };
            return error(status, "invalid_request_error", code, None, &rejection.body_text());
        }
    };
    let request = match parse_request(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let routes = request.model == "auto" || request.model == state.router_name;
    let mut outcome = Outcome {
        routed: routes,
        prompt: state.log_prompts.then(|| routed_text(&request.body, state.route_on)).flatten(),
        ..Outcome::default()
    };
    let (order, route_time): (Vec<&Candidate>, Duration) = if routes {
        let Some(text) = routed_text(&request.body, state.route_on).filter(|t| !t.trim().is_empty()) else {
            return bad_request("messages", "`messages` has no user message with text to route on");
        };
        let decision = match route(&state, text).await {
            Ok(decided) => decided,
            Err(response) => return response,
        };
        let (decision, took) = decision;
        state.metrics.routing.observe(took);
        outcome.route_us = Some(took.as_micros() as u64);
        let Some(chosen) = state.candidates.get(&decision.model_name) else {
            let message = format!("the router chose `{}`, which is not a candidate", decision.model_name);
            return error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, &message);
        };
        let mut order = vec![chosen];
        order.extend(fallback_order(&decision, &state.candidates).into_iter().take(state.max_fallbacks));
        (order, took)
    } else {
        match state.candidates.get(&request.model) {
            Some(candidate) => (vec![candidate], Duration::ZERO),
            None => {
                let message = format!(
                    "the model `{}` does not exist: use \"auto\", \"{}\" or a candidate ({})",
                    request.model,
                    state.router_name,
                    state.candidates.names().join(", ")
                );
                return error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    "model_not_found",
                    Some("model"),
                    &message,
                );
            }
        }
    };
    let mut response = forward(&state, request, &order, &mut outcome).await;
    response.extensions_mut().insert(outcome);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&state.router_name) {
        headers.insert("x-llmrouter-router", v);
    }
    headers.insert("x-llmrouter-route-us", HeaderValue::from(route_time.as_micros() as u64));
    response
}

/// Routes `text` off the async workers (a router may take milliseconds), timing the decision.
async fn route(state: &Arc<AppState>, text: String) -> Result<(RouteDecision, Duration), Response> {
    let router = Arc::clone(&state.router);
    let decided = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let decision = router.route_single(&QueryInput::new(text));
        (decision, started.elapsed())
    })
    .await;
    match decided {
        Ok((Ok(decision), took)) => Ok((decision, took)),
        Ok((Err(e), _)) => {
            let message = format!("routing failed: {e}");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, &message))
        }
        Err(_) => {
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, "routing failed"))
        }
    }
}

/// Calls the models of `order` in turn until one answers; 502 naming each when none does.
async fn forward(state: &AppState, request: ChatRequest, order: &[&Candidate], outcome: &mut Outcome) -> Response {
    let mut failed: Vec<(String, u32, CallError)> = Vec::new();
    let mut body = request.body;
    let started = Instant::now();
    outcome.upstream_started = Some(started);
    for (i, candidate) in order.iter().enumerate() {
        outcome.model = state.candidates.index_of(&candidate.name);
        body.insert("model".to_owned(), Value::String(candidate.model.clone()));
        let bytes = Bytes::from(Value::Object(body.clone()).to_string());
        let (result, attempts) = state.upstream.send(candidate, bytes, request.stream).await;
        let reply = match result {
            Ok(reply) => reply,
            Err(e) => {
                if let (Some(m), true) = (outcome.model, i + 1 < order.len()) {
                    state.metrics.fallback(m);
                }
                failed.push((candidate.name.clone(), attempts, e));
                continue;
            }
        };
        let mut response = match reply {
            Reply::Json(mut answer) => {
                outcome.upstream_took = Some(started.elapsed());
                answer.insert("model".to_owned(), Value::String(candidate.name.clone()));
                let answer = Value::Object(answer);
                outcome.usage = Usage::from_answer(&answer);
                let mut r = Response::new(Body::from(answer.to_string()));
                r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                r
            }
            Reply::Stream { first, rest, deadline } => {
                let usage = Arc::new(Mutex::new(None));
                outcome.stream_usage = Some(Arc::clone(&usage));
                let mut r = Response::new(Body::new(Relay::new(first, rest, deadline, &candidate.name, usage)));
                let h = r.headers_mut();
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r
            }
        };
        if let Ok(v) = HeaderValue::from_str(&candidate.name) {
            response.headers_mut().insert("x-llmrouter-model", v);
        }
        if !failed.is_empty() {
            let names: Vec<&str> = failed.iter().map(|(n, ..)| n.as_str()).collect();
            if let Ok(v) = HeaderValue::from_str(&names.join(",")) {
                response.headers_mut().insert("x-llmrouter-fallback-from", v);
            }
        }
        return response;
    }
    outcome.upstream_took = Some(started.elapsed());
    let plural = |n: u32| if n == 1 { "" } else { "s" };
    let tried: Vec<String> = failed
        .iter()
        .map(|(name, attempts, e)| format!("`{name}` failed after {attempts} attempt{}: {e}", plural(*attempts)))
        .collect();
    let message =
        redact_client_keys(&state.upstream.redact(&format!("no model answered: {}", tried.join("; "))), &state.keys);
    let mut response = error(StatusCode::BAD_GATEWAY, "upstream_error", "all_models_failed", None, &message);
    if let Some((name, ..)) = failed.last() {
        if let Ok(v) = HeaderValue::from_str(name) {
            response.headers_mut().insert("x-llmrouter-model", v);
        }
    }
    response
}

/// `text` with every client key replaced, longest first.
fn redact_client_keys(text: &str, keys: &[String]) -> String {
    let mut sorted: Vec<&String> = keys.iter().collect();
    sorted.sort_by_key(|k| std::cmp::Reverse(k.len()));
    let mut out = text.to_owned();
    for key in sorted {
        out = out.replace(key.as_str(), REDACTED);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param_of(body: &str) -> String {
        let response = parse_request(body.as_bytes()).err().expect("rejected");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body}");
        let bytes = body_bytes(response);
        let v: Value = serde_json::from_slice(&bytes).expect("JSON error");
        v["error"]["param"].as_str().unwrap_or(v["error"]["code"].as_str().unwrap_or_default()).to_owned()
    }

    fn body_bytes(response: Response) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        runtime.block_on(async {
            use http_body_util::BodyExt;
            response.into_body().collect().await.expect("body").to_bytes().to_vec()
        })
    }

    #[test]
    fn bad_requests_name_the_field() {
        for (body, param) in [
            ("{\"model\": \"auto\"", "invalid_json"),
            ("[1]", "body"),
            ("{\"messages\": [{\"role\": \"user\", \"content\": \"x\"}]}", "model"),
            ("{\"model\": 3, \"messages\": []}", "model"),
            ("{\"model\": \"auto\"}", "messages"),
            ("{\"model\": \"auto\", \"messages\": []}", "messages"),
            ("{\"model\": \"auto\", \"messages\": \"hi\"}", "messages"),
            ("{\"model\": \"auto\", \"messages\": [{\"content\": \"x\"}]}", "messages[0].role"),
            ("{\"model\": \"auto\", \"messages\": [{\"role\": \"user\", \"content\": 5}]}", "messages[0].content"),
            ("{\"model\": \"auto\", \"messages\": [{\"role\": \"user\"}], \"stream\": \"yes\"}", "stream"),
        ] {
            assert_eq!(param_of(body), param, "{body}");
        }
    }

    #[test]
    fn the_routed_text_is_the_last_user_message_or_the_conversation() {
        let body: Map<String, Value> = serde_json::from_str(
            r#"{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": [{"type": "text", "text": "second"}]}]}"#,
        )
        .expect("json");
        assert_eq!(routed_text(&body, RouteOn::LastUser).as_deref(), Some("second"));
        assert_eq!(
            routed_text(&body, RouteOn::Conversation).as_deref(),
            Some("system: be brief\nuser: first\nassistant: ok\nuser: second")
        );
    }

    #[test]
    fn times_are_rfc3339_utc() {
        let at = |secs: u64, ms: u64| rfc3339(UNIX_EPOCH + Duration::from_millis(secs * 1000 + ms));
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_764_633_599, 999), "2025-12-01T23:59:59.999Z");
    }

    #[test]
    fn client_keys_are_redacted_longest_first() {
        let keys = vec!["abc".to_owned(), "abcdef".to_owned()];
        assert_eq!(redact_client_keys("x abcdef y abc", &keys), "x [redacted] y [redacted]");
    }
}
