//! Relaying a model's SSE stream to the client as it arrives: each complete line is passed on
//! as soon as its chunk is read (nothing waits for the end of the answer), with `model` in every
//! `data:` JSON event set to the candidate key. A line split across chunks waits only for its
//! own end. After the first chunk, a failure (a broken connection, the total timeout) can no
//! longer be retried: the stream ends with an OpenAI-shaped `data: {"error": ...}` event.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use serde_json::Value;

use super::metrics::Usage;

/// The longest line kept waiting for its end; a longer one is passed on as it is.
const MAX_LINE_BYTES: usize = 8 * 1024 * 1024;

/// The body sent to the client: the upstream's, line by line, rewritten.
pub struct Relay {
    first: Option<Bytes>,
    rest: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    model_key: String,
    pending: Vec<u8>,
    done: bool,
    usage: Arc<Mutex<Option<Usage>>>,
}

impl Relay {
    /// Relays `first`, then `rest`, until the stream ends or `deadline` passes; the `usage` of
    /// the last chunk that has one is put in `usage`.
    pub fn new(
        first: Bytes,
        rest: Incoming,
        deadline: tokio::time::Instant,
        model_key: &str,
        usage: Arc<Mutex<Option<Usage>>>,
    ) -> Self {
        Relay {
            first: Some(first),
            rest,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            model_key: model_key.to_owned(),
            pending: Vec::new(),
            done: false,
            usage,
        }
    }

    /// The complete lines `text`, rewritten, noting any usage they report.
    fn rewrite(&self, text: &[u8]) -> Vec<u8> {
        let mut usage = None;
        let out = rewrite_lines(text, &self.model_key, &mut usage);
        if usage.is_some() {
            *self.usage.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = usage;
        }
        out
    }

    /// Adds `data` to the partial line kept, and returns the complete lines, rewritten.
    fn feed(&mut self, data: &[u8]) -> Option<Bytes> {
        self.pending.extend_from_slice(data);
        let Some(end) = self.pending.iter().rposition(|b| *b == b'\n') else {
            if self.pending.len() > MAX_LINE_BYTES {
                return Some(Bytes::from(std::mem::take(&mut self.pending)));
            }
            return None;
        };
        let rest = self.pending.split_off(end + 1);
        let complete = std::mem::replace(&mut self.pending, rest);
        Some(Bytes::from(self.rewrite(&complete)))
    }

    /// The partial last line, when the stream ends without a newline.
    fn flush(&mut self) -> Option<Bytes> {
        let rest = std::mem::take(&mut self.pending);
        (!rest.is_empty()).then(|| Bytes::from(self.rewrite(&rest)))
    }

    /// The event that ends a stream which failed after it started.
    fn error_event(&mut self, message: &str) -> Bytes {
        self.done = true;
        let mut out = self.flush().map(|b| b.to_vec()).unwrap_or_default();
        if !out.is_empty() && !out.ends_with(b"\n") {
            out.push(b'\n');
        }
        let event =
            serde_json::json!({"error": {"message": message, "type": "upstream_error", "code": "stream_interrupted"}});
        out.extend_from_slice(format!("\ndata: {event}\n\n").as_bytes());
        Bytes::from(out)
    }
}

impl Body for Relay {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.take() {
            if let Some(out) = this.feed(&first) {
                return Poll::Ready(Some(Ok(Frame::data(out))));
            }
        }
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            let event = this.error_event("the model's answer did not end within the upstream timeout");
            return Poll::Ready(Some(Ok(Frame::data(event))));
        }
        loop {
            match Pin::new(&mut this.rest).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    this.done = true;
                    return Poll::Ready(this.flush().map(|b| Ok(Frame::data(b))));
                }
                Poll::Ready(Some(Err(e))) => {
                    let event = this.error_event(&format!("the model's stream broke off: {e}"));
                    return Poll::Ready(Some(Ok(Frame::data(event))));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        if let Some(out) = this.feed(&data) {
                            return Poll::Ready(Some(Ok(Frame::data(out))));
                        }
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.first.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// `text` (whole lines) with `model` set to `model_key` in every `data:` line holding a JSON
/// object; other lines (comments, `event:`, `data: [DONE]`, non-JSON data) are left as they are.
/// The `usage` of the last event that has one is put in `usage`.
pub fn rewrite_lines(text: &[u8], model_key: &str, usage: &mut Option<Usage>) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 64);
    for line in text.split_inclusive(|b| *b == b'\n') {
        let body_end = line.len() - line.iter().rev().take_while(|b| **b == b'\n' || **b == b'\r').count();
        let (content, ending) = line.split_at(body_end);
        match rewrite_data(content, model_key, usage) {
            Some(new) => {
                out.extend_from_slice(&new);
                out.extend_from_slice(ending);
            }
            None => out.extend_from_slice(line),
        }
    }
    out
}

fn rewrite_data(line: &[u8], model_key: &str, usage: &mut Option<Usage>) -> Option<Vec<u8>> {
    let payload = line.strip_prefix(b"data:")?;
    let payload = payload.strip_prefix(b" ").unwrap_or(payload);
    if payload.first() != Some(&b'{') {
        return None;
    }
    let mut value: Value = serde_json::from_slice(payload).ok()?;
    if let Some(found) = Usage::from_answer(&value) {
        *usage = Some(found);
    }
    value.as_object_mut()?.insert("model".to_owned(), Value::String(model_key.to_owned()));
    let mut out = b"data: ".to_vec();
    out.extend_from_slice(value.to_string().as_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_lines_get_the_candidate_key_and_the_rest_is_untouched() {
        let text = b"data: {\"model\":\"org/x\",\"choices\":[]}\r\n\r\n: keep-alive\nevent: x\ndata: [DONE]\n\ndata:{\"a\":1}\n";
        let mut usage = None;
        let out = String::from_utf8(rewrite_lines(text, "small", &mut usage)).expect("utf-8");
        assert_eq!(
            out,
            "data: {\"choices\":[],\"model\":\"small\"}\r\n\r\n: keep-alive\nevent: x\ndata: [DONE]\n\n\
             data: {\"a\":1,\"model\":\"small\"}\n"
        );
        assert_eq!(usage, None);
        assert_eq!(rewrite_lines(b"data: {not json\n", "m", &mut usage), b"data: {not json\n");
        let line = b"data: {\"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 2}}\n";
        rewrite_lines(line, "m", &mut usage);
        assert_eq!(usage, Some(Usage { prompt: 3, completion: 2 }));
    }
}
