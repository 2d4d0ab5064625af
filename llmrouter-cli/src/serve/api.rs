//! `serve`'s HTTP API, in OpenAI's wire format: `POST /v1/chat/completions`, `GET /v1/models`,
//! `GET /health`, `GET /ready` and `GET /metrics`; client-key authentication of `/v1/*` and
//! `/metrics`; errors as `{"error": {"message", "type", "param", "code"}}`. Two endpoints of our
//! own serve the chat page: `GET /` (the page, [`super::page`]; no key) and `POST /v1/route`.
//!
//! `POST /v1/route` takes a chat request's body and answers the routing decision without calling
//! any model, under the same key, rate and concurrency limits as chat completions:
//! `{"object": "llmrouter.route", "router": "knnrouter", "model": "small", "route_us": 41,
//! "ranking": [{"model": "small", "predicted_score": 0.9, "estimated_cost": 0.00001}, ...],
//! "extras": {"cost_weight": 0.0}}`. The ranking starts with the chosen model, then the rest of
//! the decision's `ranking`; `predicted_score` and `estimated_cost` (USD) are `null` where the
//! router gives none (the baselines rank only their choice). A candidate key as `model` is
//! answered with that candidate and `router: null`, as chat completions would call it.
//!
//! Both take one extension field: `route_on` (`"last_user"` or `"conversation"`) chooses, for
//! this request, the text the router decides on (default: `serve.route_on`); it is removed from
//! the body before the body is forwarded, so no model sees it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::handler::Handler;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use llmrouter_core::{Candidate, Candidates, QueryInput, RouteDecision};
use serde_json::{Map, Value, json};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::access_log::AccessLog;
use super::limits::{Gate, Held, RateLimit};
use super::metrics::{Metrics, Reason, Usage};
use super::reload::LiveRouter;
use super::settings::RouteOn;
use super::sse::Relay;
use crate::client::{CallError, Client as ModelClient, REDACTED, Reply, fallback_order};

/// Below this average decision time (µs), a router decides on the async worker itself.
const INLINE_ROUTE_US: u64 = 100;

/// Everything a request needs, shared by all of them.
pub struct AppState {
    /// The router; SIGHUP swaps in a new one (see [`super::reload`]).
    pub router: LiveRouter,
    /// The recent decisions' average time in µs, which picks where the next one runs ([`route`]).
    pub route_us_average: AtomicU64,
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
    /// The access log's writer.
    pub log: AccessLog,
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

/// The endpoints with request metrics of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/route`.
    Route,
    /// Any other path.
    Other,
}

/// Counts a request and writes its access-log line once its response body is done (or dropped).
struct Finish {
    state: Arc<AppState>,
    /// Which of the counted endpoints it was, if any.
    endpoint: Endpoint,
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
        match self.endpoint {
            Endpoint::Chat => {
                if let Some(took) = upstream {
                    metrics.upstream.observe(took);
                }
                metrics.request(o.routed, o.model, self.status, usage);
                metrics.in_flight(-1);
            }
            Endpoint::Route => metrics.route_request(o.routed, o.model, self.status),
            Endpoint::Other => {}
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
        self.state.log.write(text);
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
        .route("/v1/chat/completions", limited(&state, chat_completions))
        .route("/v1/route", limited(&state, route_only))
        .route("/v1/models", get(models))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), authenticate));
    axum::Router::new()
        .merge(v1)
        .route("/health", get(|| async { json_response(StatusCode::OK, &json!({"status": "ok"})) }))
        .route("/ready", get(ready))
        .route("/", get(super::page::page))
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

/// `POST` to `handler` behind the rate limit, then the concurrency limit.
fn limited<H, T>(state: &Arc<AppState>, handler: H) -> axum::routing::MethodRouter<Arc<AppState>>
where
    H: Handler<T, Arc<AppState>>,
    T: 'static,
{
    post(handler)
        .layer(middleware::from_fn_with_state(Arc::clone(state), limit_concurrency))
        .layer(middleware::from_fn_with_state(Arc::clone(state), limit_rate))
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
    let endpoint = match request.uri().path() {
        "/v1/chat/completions" => Endpoint::Chat,
        "/v1/route" => Endpoint::Route,
        _ => Endpoint::Other,
    };
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    if endpoint == Endpoint::Chat {
        state.metrics.in_flight(1);
    }
    let response = next.run(request).await;
    let status = response.status();
    if endpoint == Endpoint::Chat && status.is_success() {
        state.metrics.ttfb.observe(arrived.elapsed());
    }
    // On the chat and route paths each of these statuses has one cause (a failed upstream is a 502).
    let reason = match status {
        StatusCode::TOO_MANY_REQUESTS => Some(Reason::RateLimit),
        StatusCode::SERVICE_UNAVAILABLE => Some(Reason::Overloaded),
        StatusCode::PAYLOAD_TOO_LARGE => Some(Reason::BodyTooLarge),
        StatusCode::BAD_REQUEST => Some(Reason::BadRequest),
        StatusCode::NOT_FOUND => Some(Reason::ModelNotFound),
        _ => None,
    };
    if let Some(reason) = reason.filter(|_| endpoint != Endpoint::Other) {
        state.metrics.reject(reason);
    }
    let outcome = response.extensions().get::<Outcome>().cloned().unwrap_or_default();
    let (parts, body) = response.into_parts();
    let finish = Finish { state, endpoint, method, path, arrived, status: status.as_u16(), outcome };
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
    /// `route_on`, this request's choice of the text routed on (an llmrouter extension, taken
    /// out of the body before it is forwarded); `None`: `serve.route_on`.
    route_on: Option<RouteOn>,
}

/// Checks the fields the gateway reads; every other field passes through untouched. The error
/// is the 400 itself, answered at once (hence not boxed).
#[allow(clippy::result_large_err)]
fn parse_request(bytes: &[u8]) -> Result<ChatRequest, Response> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| {
        let code = if e.is_eof() { "the body ends too early" } else { "the body is not valid JSON" };
        error(StatusCode::BAD_REQUEST, "invalid_request_error", "invalid_json", None, &format!("{code}: {e}"))
    })?;
    let Value::Object(mut body) = value else {
        return Err(bad_request("body", "the body must be a JSON object"));
    };
    let route_on = match body.remove("route_on") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s == "last_user" => Some(RouteOn::LastUser),
        Some(Value::String(s)) if s == "conversation" => Some(RouteOn::Conversation),
        Some(other) => {
            let message = format!("`route_on` must be \"last_user\" or \"conversation\", found {other}");
            return Err(bad_request("route_on", &message));
        }
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
    Ok(ChatRequest { body, model, stream, route_on })
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

/// The body of a chat request, read and checked; the error is the response to send.
#[allow(clippy::result_large_err)]
fn read_request(body: Result<Bytes, BytesRejection>) -> Result<ChatRequest, Response> {
    let bytes = body.map_err(|rejection| {
        let status = rejection.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE { "request_too_large" } else { "invalid_body" };
        error(status, "invalid_request_error", code, None, &rejection.body_text())
    })?;
    parse_request(&bytes)
}

/// Who answers a request: the router's choice, or the candidate it names.
enum Target<'a> {
    /// `model` was `auto` or the router's name: the decision, its time and the chosen candidate.
    Routed(RouteDecision, Duration, &'a Candidate),
    /// `model` was this candidate's key.
    Named(&'a Candidate),
}

/// Decides who answers `request` (routing it when it asks for the router), noting the routing
/// time and the prompt in `outcome`; the error is the response to send (400, 404 or 500).
async fn target<'a>(
    state: &'a Arc<AppState>,
    request: &ChatRequest,
    outcome: &mut Outcome,
) -> Result<Target<'a>, Response> {
    let routes = request.model == "auto" || request.model == state.router_name;
    outcome.routed = routes;
    let route_on = request.route_on.unwrap_or(state.route_on);
    outcome.prompt = state.log_prompts.then(|| routed_text(&request.body, route_on)).flatten();
    if !routes {
        let message = || {
            format!(
                "the model `{}` does not exist: use \"auto\", \"{}\" or a candidate ({})",
                request.model,
                state.router_name,
                state.candidates.names().join(", ")
            )
        };
        let candidate = state.candidates.get(&request.model).ok_or_else(|| {
            error(StatusCode::NOT_FOUND, "invalid_request_error", "model_not_found", Some("model"), &message())
        })?;
        outcome.model = state.candidates.index_of(&candidate.name);
        return Ok(Target::Named(candidate));
    }
    let Some(text) = routed_text(&request.body, route_on).filter(|t| !t.trim().is_empty()) else {
        return Err(bad_request("messages", "`messages` has no user message with text to route on"));
    };
    let (decision, took) = route(state, text).await?;
    state.metrics.routing.observe(took);
    outcome.route_us = Some(took.as_micros() as u64);
    let Some(chosen) = state.candidates.get(&decision.model_name) else {
        let message = format!("the router chose `{}`, which is not a candidate", decision.model_name);
        return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, &message));
    };
    outcome.model = state.candidates.index_of(&chosen.name);
    Ok(Target::Routed(decision, took, chosen))
}

/// `POST /v1/chat/completions`.
async fn chat_completions(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let request = match read_request(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut outcome = Outcome::default();
    let (order, route_time): (Vec<&Candidate>, Duration) = match target(&state, &request, &mut outcome).await {
        Ok(Target::Routed(decision, took, chosen)) => {
            let mut order = vec![chosen];
            order.extend(fallback_order(&decision, &state.candidates).into_iter().take(state.max_fallbacks));
            (order, took)
        }
        Ok(Target::Named(candidate)) => (vec![candidate], Duration::ZERO),
        Err(response) => return response,
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

/// `POST /v1/route`: who would answer this chat request, and the router's ranking, without
/// calling any model (see the module docs for the answer's shape).
async fn route_only(State(state): State<Arc<AppState>>, body: Result<Bytes, BytesRejection>) -> Response {
    let request = match read_request(body) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let mut outcome = Outcome::default();
    let (value, model, took) = match target(&state, &request, &mut outcome).await {
        Ok(Target::Routed(decision, took, chosen)) => {
            (route_answer(Some(&state.router_name), &chosen.name, &decision.extras, took), chosen.name.as_str(), took)
        }
        Ok(Target::Named(candidate)) => {
            (route_answer(None, &candidate.name, &Map::new(), Duration::ZERO), candidate.name.as_str(), Duration::ZERO)
        }
        Err(response) => return response,
    };
    outcome.model = state.candidates.index_of(model);
    let mut response = json_response(StatusCode::OK, &value);
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(model) {
        headers.insert("x-llmrouter-model", v);
    }
    if let (true, Ok(v)) = (outcome.routed, HeaderValue::from_str(&state.router_name)) {
        headers.insert("x-llmrouter-router", v);
    }
    headers.insert("x-llmrouter-route-us", HeaderValue::from(took.as_micros() as u64));
    response.extensions_mut().insert(outcome);
    response
}

/// The answer of `POST /v1/route` for a decision of `model` with these extras: the chosen model
/// first, then the rest of the `ranking` extra, each with its `predicted_scores` and
/// `estimated_costs` entry (`null` when absent), and the other extras.
fn route_answer(router: Option<&str>, model: &str, extras: &Map<String, Value>, took: Duration) -> Value {
    let ranked = extras.get("ranking").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let mut order = vec![model];
    for name in ranked.iter().filter_map(Value::as_str) {
        if !order.contains(&name) {
            order.push(name);
        }
    }
    let number = |key: &str, model: &str| {
        extras.get(key).and_then(|m| m.get(model)).filter(|v| v.is_number()).cloned().unwrap_or(Value::Null)
    };
    let ranking: Vec<Value> = order
        .iter()
        .map(|m| {
            json!({"model": m, "predicted_score": number("predicted_scores", m),
                   "estimated_cost": number("estimated_costs", m)})
        })
        .collect();
    let rest: Map<String, Value> = extras
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "ranking" | "predicted_scores" | "estimated_costs"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({"object": "llmrouter.route", "router": router, "model": model,
           "route_us": took.as_micros() as u64, "ranking": ranking, "extras": rest})
}

/// Routes `text`, timing the decision. A router whose recent decisions took under
/// [`INLINE_ROUTE_US`] on average decides right here, on the async worker (a hop to the blocking
/// pool and back would cost more than the decision); a slower one decides on the blocking pool, so
/// it never stalls the requests that share the worker. A panic in the router is a 500 either way.
async fn route(state: &Arc<AppState>, text: String) -> Result<(RouteDecision, Duration), Response> {
    let router = state.router.get();
    let decide = move || decide(router.as_ref(), text);
    let (decision, took) = if state.route_us_average.load(Ordering::Relaxed) < INLINE_ROUTE_US {
        decide()
    } else {
        match tokio::task::spawn_blocking(decide).await {
            Ok(decided) => decided,
            Err(_) => {
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "routing_failed",
                    None,
                    "routing failed",
                ));
            }
        }
    };
    // An exponential average over about the last eight decisions.
    let us = took.as_micros().min(u128::from(u32::MAX)) as u64;
    let average = state.route_us_average.load(Ordering::Relaxed);
    state.route_us_average.store(average - average / 8 + us / 8, Ordering::Relaxed);
    decision.map(|d| (d, took))
}

/// One decision of `router` on `text`, timed; a router error or panic is the 500 to answer.
fn decide<R: llmrouter_core::Router + ?Sized>(router: &R, text: String) -> (Result<RouteDecision, Response>, Duration) {
    let started = Instant::now();
    let decision =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| router.route_single(&QueryInput::new(text))));
    let took = started.elapsed();
    let decision = match decision {
        Ok(Ok(decision)) => Ok(decision),
        Ok(Err(e)) => {
            let message = format!("routing failed: {e}");
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, &message))
        }
        Err(_) => {
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "routing_failed", None, "the router panicked"))
        }
    };
    (decision, took)
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

    /// A router that panics on one query and fails on another.
    struct Faulty;

    impl llmrouter_core::Router for Faulty {
        fn from_meta(_: llmrouter_core::MetaRouter) -> llmrouter_core::Result<Self> {
            Ok(Faulty)
        }

        fn route_single(&self, query: &QueryInput) -> llmrouter_core::Result<RouteDecision> {
            match query.query.as_str() {
                "panic" => panic!("a bug in the router"),
                "fail" => Err(llmrouter_core::Error::router("faulty", "no decision for this")),
                _ => Ok(RouteDecision::new("faulty", query, "small")),
            }
        }
    }

    #[test]
    fn a_router_panic_or_error_is_a_500_in_openais_shape() {
        let (ok, _) = decide(&Faulty, "hello".to_owned());
        assert_eq!(ok.expect("a decision").model_name, "small");
        for (text, message) in
            [("panic", "the router panicked"), ("fail", "routing failed: faulty: no decision for this")]
        {
            let (answer, _) = decide(&Faulty, text.to_owned());
            let response = answer.err().expect("an error response");
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR, "{text}");
            let v: Value = serde_json::from_slice(&body_bytes(response)).expect("JSON error");
            assert_eq!(v["error"]["message"], message, "{text}");
            assert_eq!(v["error"]["code"], "routing_failed");
            assert_eq!(v["error"]["type"], "server_error");
        }
    }

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
    fn a_request_may_choose_the_text_routed_on_and_the_choice_is_not_forwarded() {
        let messages = r#""messages": [{"role": "user", "content": "hi"}]"#;
        for (given, expected) in [
            ("", None),
            (r#""route_on": null,"#, None),
            (r#""route_on": "conversation","#, Some(RouteOn::Conversation)),
        ] {
            let body = format!(r#"{{"model": "auto", {given} {messages}}}"#);
            let request = parse_request(body.as_bytes()).ok().expect("accepted");
            assert_eq!(request.route_on, expected, "{body}");
            assert!(!request.body.contains_key("route_on"), "{body}: route_on would reach the model");
        }
        for bad in [r#""everything""#, "1", "true"] {
            assert_eq!(param_of(&format!(r#"{{"model": "auto", "route_on": {bad}, {messages}}}"#)), "route_on");
        }
    }

    #[test]
    fn the_route_answer_puts_the_choice_first_with_its_score_and_cost() {
        let extras: Map<String, Value> = serde_json::from_value(json!({
            "ranking": ["b", "a", "c"], "predicted_scores": {"a": 0.9, "b": 0.8, "c": 0.1},
            "estimated_costs": {"a": 0.002, "b": 0.0001}, "cost_weight": 0.5,
        }))
        .expect("extras");
        let v = route_answer(Some("r"), "b", &extras, Duration::from_micros(41));
        assert_eq!(
            v["ranking"],
            json!([{"model": "b", "predicted_score": 0.8, "estimated_cost": 0.0001},
                   {"model": "a", "predicted_score": 0.9, "estimated_cost": 0.002},
                   {"model": "c", "predicted_score": 0.1, "estimated_cost": null}])
        );
        assert_eq!(
            (v["router"].as_str(), v["model"].as_str(), v["route_us"].as_u64()),
            (Some("r"), Some("b"), Some(41))
        );
        assert_eq!(v["extras"], json!({"cost_weight": 0.5}));
        // A choice the ranking puts elsewhere still comes first; no ranking: the choice alone.
        let v = route_answer(Some("r"), "c", &extras, Duration::ZERO);
        let order: Vec<&str> =
            v["ranking"].as_array().expect("list").iter().filter_map(|r| r["model"].as_str()).collect();
        assert_eq!(order, ["c", "b", "a"]);
        let v = route_answer(None, "x", &Map::new(), Duration::ZERO);
        assert_eq!(v["ranking"], json!([{"model": "x", "predicted_score": null, "estimated_cost": null}]));
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
