//! Answering a routed query ([`Client::answer`]): the chosen model, then while it fails the
//! models of [`fallback_order`]; what one answer holds ([`Completion`], [`Usage`]) and the result
//! `infer` prints or writes per query ([`InferResult`]).

use std::time::Instant;

use llmrouter_core::{Candidate, Candidates, RouteDecision};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{CallError, Client, Reply, snippet};

/// Token counts as the API reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens of the answer.
    pub completion_tokens: u64,
    /// Their sum (as reported, or computed when the API leaves it out).
    pub total_tokens: u64,
}

/// A successful chat completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The answer text.
    pub text: String,
    /// Token usage, when the API reports it.
    pub usage: Option<Usage>,
}

/// The outcome of calling one model, retries included.
#[derive(Debug, Clone, PartialEq)]
pub struct CallReport {
    /// The answer, or the error of the last attempt.
    pub result: Result<Completion, CallError>,
    /// HTTP attempts made (0 when nothing could be sent).
    pub attempts: u32,
}

/// A model that failed before the one whose result is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedModel {
    /// The candidate's name.
    pub model_name: String,
    /// Attempts made on it.
    pub attempts: u32,
    /// Its last error.
    pub error: String,
}

/// The result of answering one query: what `infer` prints or writes, one JSON object per query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferResult {
    /// Position of the query in its input file (batch runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The query text.
    pub query: String,
    /// The query's id, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The candidate that answered (or, when none did, the last one tried).
    pub model_name: String,
    /// Its API model id.
    pub api_model: String,
    /// The answer (`null` on failure).
    pub response: Option<String>,
    /// Token usage of the answer (`null` on failure or when the API does not report it).
    pub usage: Option<Usage>,
    /// USD: usage priced at the answering candidate's `input_price`/`output_price` per 1M tokens.
    pub cost: Option<f64>,
    /// Wall time from the first attempt to the result, backoff and fallbacks included.
    pub latency_ms: u64,
    /// Whether a model answered.
    pub success: bool,
    /// Why it failed (`null` on success).
    pub error: Option<String>,
    /// HTTP attempts made, over every model tried.
    pub attempts: u32,
    /// Models that failed before `model_name`, in the order tried (absent when none did).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback_from: Vec<FailedModel>,
    /// The routing decision, unchanged (`model_name` there is the router's choice).
    pub routing: RouteDecision,
}

/// The models to try after the router's choice fails, best first: the decision's `ranking`
/// extra (a list of candidate names, best first) when the router gives one, else every other
/// candidate from the most to the least expensive (input plus output price), ties by name.
/// The chosen model, unknown names and repeats are left out.
pub fn fallback_order<'a>(decision: &RouteDecision, candidates: &'a Candidates) -> Vec<&'a Candidate> {
    let chosen = decision.model_name.as_str();
    if let Some(Value::Array(ranking)) = decision.extras.get("ranking") {
        let mut order: Vec<&Candidate> = Vec::new();
        for name in ranking.iter().filter_map(Value::as_str) {
            if let Some(c) = candidates.get(name) {
                if c.name != chosen && !order.iter().any(|o| o.name == c.name) {
                    order.push(c);
                }
            }
        }
        return order;
    }
    let mut rest: Vec<&Candidate> = candidates.all().iter().filter(|c| c.name != chosen).collect();
    rest.sort_by(|a, b| b.price().total_cmp(&a.price()).then(a.name.cmp(&b.name)));
    rest
}

impl Client {
    /// Sends `prompt` to `candidate` as one user message, retrying as the options say.
    pub async fn complete(&self, candidate: &Candidate, prompt: &str) -> CallReport {
        let body = serde_json::json!({
            "model": candidate.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.options().temperature,
            "max_tokens": self.options().max_tokens,
            "stream": false,
        })
        .to_string();
        let (reply, attempts) = self.send(candidate, body.into(), false).await;
        let malformed = |message: String| CallError::Malformed {
            url: self.redact(&self.url_for(candidate).unwrap_or_default()),
            message: self.redact(&message),
        };
        let result = match reply {
            Ok(Reply::Json(answer)) => completion_of(answer).map_err(malformed),
            // `send` streams only when asked to; should a stream come anyway, it is no answer here.
            Ok(Reply::Stream { .. }) => Err(malformed("an event stream, where a JSON answer was asked for".to_owned())),
            Err(e) => Err(e),
        };
        CallReport { result, attempts }
    }

    /// Answers the routed query: calls the chosen model and, while it fails, up to
    /// `max_fallbacks` models of [`fallback_order`]. Never fails: failure is in the result.
    pub async fn answer(&self, decision: RouteDecision, candidates: &Candidates, max_fallbacks: usize) -> InferResult {
        let started = Instant::now();
        let Some(chosen) = candidates.get(&decision.model_name) else {
            let error = CallError::UnknownModel { model: decision.model_name.clone() };
            return InferResult {
                index: None,
                query: decision.query.clone(),
                id: decision.id.clone(),
                model_name: decision.model_name.clone(),
                api_model: decision.model_name.clone(),
                response: None,
                usage: None,
                cost: None,
                latency_ms: 0,
                success: false,
                error: Some(error.to_string()),
                attempts: 0,
                fallback_from: Vec::new(),
                routing: decision,
            };
        };
        let mut order = vec![chosen];
        order.extend(fallback_order(&decision, candidates).into_iter().take(max_fallbacks));
        let mut failed: Vec<FailedModel> = Vec::new();
        let mut attempts = 0;
        let last = order.len() - 1;
        for (i, candidate) in order.into_iter().enumerate() {
            let report = self.complete(candidate, &decision.query).await;
            attempts += report.attempts;
            let (response, usage, error) = match report.result {
                Ok(done) => (Some(self.redact(&done.text)), done.usage, None),
                Err(e) if i < last => {
                    failed.push(FailedModel {
                        model_name: candidate.name.clone(),
                        attempts: report.attempts,
                        error: e.to_string(),
                    });
                    continue;
                }
                Err(e) => (None, None, Some(e.to_string())),
            };
            let cost = usage.map(|u| {
                (u.prompt_tokens as f64 * candidate.input_price + u.completion_tokens as f64 * candidate.output_price)
                    / 1e6
            });
            return InferResult {
                index: None,
                query: decision.query.clone(),
                id: decision.id.clone(),
                model_name: candidate.name.clone(),
                api_model: candidate.model.clone(),
                success: error.is_none(),
                response,
                usage,
                cost,
                latency_ms: started.elapsed().as_millis() as u64,
                error,
                attempts,
                fallback_from: failed,
                routing: decision,
            };
        }
        unreachable!("the loop returns on its last model")
    }
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    choices: Option<Vec<RawChoice>>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    message: Option<RawMessage>,
    /// The legacy completions field, accepted too.
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<Value>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    total_tokens: Option<u64>,
}

/// The completion in a chat-completion answer: `choices[0].message.content` (a string, or a
/// list of parts with `text`) and `usage`. No choice, or no content, is an error.
fn completion_of(answer: Map<String, Value>) -> Result<Completion, String> {
    let raw: RawResponse =
        serde_json::from_value(Value::Object(answer)).map_err(|e| format!("not a chat completion ({e})"))?;
    let choice = raw.choices.and_then(|c| c.into_iter().next()).ok_or("no `choices` in the answer")?;
    let content = match (choice.message.and_then(|m| m.content), choice.text) {
        (Some(Value::String(s)), _) => s,
        (Some(Value::Array(parts)), _) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        (Some(Value::Null) | None, Some(text)) => text,
        (Some(Value::Null) | None, None) => return Err("the first choice has no `message.content`".into()),
        (Some(other), _) => return Err(format!("`message.content` is not text: {}", snippet(&other.to_string()))),
    };
    let usage = raw.usage.map(|u| {
        let prompt = u.prompt_tokens.unwrap_or(0);
        let completion = u.completion_tokens.unwrap_or(0);
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: u.total_tokens.unwrap_or(prompt + completion),
        }
    });
    Ok(Completion { text: content, usage })
}

#[cfg(test)]
mod tests {
    use llmrouter_core::QueryInput;

    use super::*;
    use crate::client::json_answer;
    use crate::client::tests::candidates;

    /// A body as the client reads it: first as a JSON answer, then as a completion.
    fn parse_completion(text: &str) -> Result<Completion, String> {
        json_answer(text).and_then(completion_of)
    }

    #[test]
    fn fallback_uses_the_ranking_else_price_then_name() {
        let c = candidates();
        let names = |d: &RouteDecision| fallback_order(d, &c).iter().map(|c| c.name.clone()).collect::<Vec<_>>();
        let d = RouteDecision::new("r", &QueryInput::new("q"), "mid");
        assert_eq!(names(&d), ["also-dear", "dear", "cheap"]);
        let d = d.with("ranking", serde_json::json!(["mid", "cheap", "nope", "cheap", "dear"]));
        assert_eq!(names(&d), ["cheap", "dear"]);
    }

    #[test]
    fn completions_parse_or_say_what_is_wrong() {
        let ok = parse_completion(
            r#"{"choices": [{"message": {"role": "assistant", "content": "4"}}], "usage": {"prompt_tokens": 3, "completion_tokens": 1}}"#,
        )
        .expect("valid");
        assert_eq!(ok.text, "4");
        assert_eq!(ok.usage, Some(Usage { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 }));
        let parts = parse_completion(
            r#"{"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}"#,
        )
        .expect("parts");
        assert_eq!((parts.text.as_str(), parts.usage), ("ab", None));
        for (body, needle) in [
            ("{\"choices\": [", "not a chat completion"),
            ("{\"choices\": []}", "no `choices`"),
            ("{\"error\": {\"message\": \"quota\"}}", "quota"),
            ("{\"choices\": [{\"message\": {}}]}", "no `message.content`"),
        ] {
            let err = parse_completion(body).expect_err(body);
            assert!(err.contains(needle), "{body}: {err}");
        }
    }
}
