"""The official OpenAI Python SDK against `llmrouter serve` (run by tests/serve.rs).

Environment: LLMROUTER_BASE_URL (http://127.0.0.1:PORT), LLMROUTER_KEY (a client key). Makes one
non-streamed and one streamed chat completion with `model="auto"` and prints one JSON object with
what the SDK parsed, for the Rust test to check. Any SDK error ends the script with a traceback
(exit 1).
"""

import json
import os

import openai

client = openai.OpenAI(
    base_url=os.environ["LLMROUTER_BASE_URL"] + "/v1",
    api_key=os.environ["LLMROUTER_KEY"],
    max_retries=0,
    timeout=30,
)
messages = [{"role": "user", "content": "What is the capital of France?"}]

raw = client.chat.completions.with_raw_response.create(model="auto", messages=messages, temperature=0.2)
completion = raw.parse()

stream = client.chat.completions.create(
    model="auto",
    messages=messages,
    stream=True,
    stream_options={"include_usage": True},
)
pieces, chunk_models, stream_usage = [], set(), None
for chunk in stream:
    chunk_models.add(chunk.model)
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
    if chunk.usage is not None:
        stream_usage = chunk.usage.total_tokens

print(
    json.dumps(
        {
            "sdk_version": openai.__version__,
            "model": completion.model,
            "header_model": raw.headers.get("x-llmrouter-model"),
            "content": completion.choices[0].message.content,
            "total_tokens": completion.usage.total_tokens if completion.usage else None,
            "stream_text": "".join(pieces),
            "stream_models": sorted(chunk_models),
            "stream_usage": stream_usage,
        }
    )
)
