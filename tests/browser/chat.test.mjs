// The chat page of `llmrouter chat` in a real headless Chromium (Debian's /usr/bin/chromium),
// driven by puppeteer-core, against the real binary and a fake upstream started here.
//
// It trains knnrouter on the example routing data (so the ranking has scores and costs), starts
// `llmrouter chat --port 0` with a client key, opens the page, gives the key when the page asks,
// sends a message with Enter and checks that the answer streams in, that the model that answered
// and the router's ranking are shown, then sends a second one (two lines, Shift+Enter) to a fixed
// candidate, and a third whose chosen model fails, so another answers. The screenshots go to
// target/chat-page.png (two turns), chat-page-key.png (the key dialog) and chat-page-fallback.png.
// Every server and the browser are stopped at the end, also when an assertion fails; every wait
// has a timeout.
//
// Run with scripts/browser-test.sh (it installs chromium and the npm packages, and builds the
// binary), or `node --test tests/browser/chat.test.mjs` with LLMROUTER_BIN set.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import puppeteer from "puppeteer-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const TARGET = process.env.CARGO_TARGET_DIR ? path.resolve(ROOT, process.env.CARGO_TARGET_DIR) : path.join(ROOT, "target");
const BIN = process.env.LLMROUTER_BIN || path.join(TARGET, "debug", "llmrouter");
const SCREENSHOT = process.env.CHAT_SCREENSHOT || path.join(TARGET, "chat-page.png");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const CLIENT_KEY = "chat-page-key-41c7";
/** Milliseconds between two streamed chunks of the fake upstream. */
const CHUNK_PAUSE_MS = 70;

/** Rejects after `ms` with `what` unless `promise` settles first. */
function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// The processes this test started, killed when node exits however it exits (a failed assertion
// runs the test's `finally`; a timeout or a signal may not).
const children = new Set();
const killAll = () => { for (const child of children) { try { child.kill("SIGKILL"); } catch (_) { /* gone */ } } };
process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => { killAll(); process.exit(1); });

/**
 * A fake OpenAI-compatible upstream on 127.0.0.1 (a free port): it answers
 * `Answer from MODEL: TEXT` (MODEL the API model id, TEXT the last user message), streamed in
 * chunks of a few words with a pause between them, usage last. It records every request.
 */
async function startUpstream() {
  const requests = [];
  const failing = new Set(); // API model ids answered with 500

  const server = http.createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => { body += chunk; });
    req.on("end", async () => {
      let request = {};
      try { request = JSON.parse(body); } catch (_) { /* recorded as {} */ }
      requests.push({ url: req.url, request });
      if (req.method !== "POST" || req.url !== "/v1/chat/completions") {
        res.writeHead(404, { "content-type": "application/json" }).end('{"error": {"message": "no such endpoint"}}');
        return;
      }
      if (failing.has(request.model)) {
        res.writeHead(500, { "content-type": "application/json" }).end('{"error": {"message": "down for the test"}}');
        return;
      }
      const users = (request.messages || []).filter((m) => m.role === "user");
      const last = users.length ? String(users[users.length - 1].content) : "";
      const text = `Answer from ${request.model}: ${last}`;
      if (!request.stream) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({
          id: "chatcmpl-fake", object: "chat.completion", model: request.model,
          choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: text } }],
          usage: { prompt_tokens: 12, completion_tokens: 9, total_tokens: 21 },
        }));
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta, extra) => JSON.stringify(Object.assign({
        id: "chatcmpl-fake", object: "chat.completion.chunk", model: request.model,
        choices: [{ index: 0, delta, finish_reason: null }],
      }, extra || {}));
      const send = (data) => { if (!res.destroyed) res.write(`data: ${data}\n\n`); };
      send(chunk({ role: "assistant", content: "" }));
      const pieces = text.match(/\S+\s*/g) || [text];
      for (let i = 0; i < pieces.length; i += 2) {
        await sleep(CHUNK_PAUSE_MS);
        send(chunk({ content: pieces.slice(i, i + 2).join("") }));
      }
      if (request.stream_options && request.stream_options.include_usage) {
        send(JSON.stringify({
          id: "chatcmpl-fake", object: "chat.completion.chunk", model: request.model, choices: [],
          usage: { prompt_tokens: 12, completion_tokens: pieces.length, total_tokens: 12 + pieces.length },
        }));
      }
      send("[DONE]");
      res.end();
    });
  });
  await within(5000, "the fake upstream binding", new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  }));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    failing,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** The example candidates, each pointing at `upstream`; and a knnrouter config on them. */
function writeConfig(dir, upstream) {
  const llm = JSON.parse(fs.readFileSync(path.join(ROOT, "data/example_data/llm_candidates/default_llm.json"), "utf8"));
  for (const candidate of Object.values(llm)) candidate.api_endpoint = upstream.url;
  fs.writeFileSync(path.join(dir, "llm.json"), JSON.stringify(llm, null, 2));
  const config = path.join(dir, "config.yaml");
  fs.writeFileSync(config, [
    "data_path:",
    `  llm_data: ${path.join(dir, "llm.json")}`,
    `  routing_data_train: ${path.join(ROOT, "data/example_data/routing_data/default_routing_train_data.jsonl")}`,
    "model_path:",
    `  save_model_path: ${path.join(dir, "knnrouter.json")}`,
    "hparam:",
    "  n_neighbors: 10",
    "embedding:",
    "  backend: hashed",
    "  dim: 4096",
    "metric:",
    "  weights:",
    "    performance: 1",
    "    cost: 0.2",
    "serve:",
    "  host: 0.0.0.0        # chat binds to 127.0.0.1 whatever this says",
    "  keys: ['${CHAT_TEST_KEY}']",
    "",
  ].join("\n"));
  return { config, candidates: llm };
}

/** `llmrouter chat`, until its `chat page:` line (60 s at most). */
async function startChat(config) {
  const env = Object.assign({}, process.env, { CHAT_TEST_KEY: CLIENT_KEY });
  delete env.LLMROUTER_SERVER_KEYS;
  const child = spawn(BIN, ["chat", "--router", "knnrouter", "--config", config, "--port", "0"], {
    env, stdio: ["ignore", "ignore", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stderr = "";
  const url = await within(60000, "the `chat page:` line", new Promise((resolve, reject) => {
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (text) => {
      stderr += text;
      const found = stderr.match(/^chat page: (\S+)\n/m); // a whole line: stderr may come in pieces
      if (found) resolve(found[1]);
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`llmrouter chat exited (${code}):\n${stderr}`)));
  }));
  return { child, url, stderr: () => stderr };
}

/** SIGTERM, then SIGKILL when the process has not exited within 10 s. */
async function stop(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  try {
    await within(10000, "llmrouter chat stopping", exited);
  } catch (_) {
    child.kill("SIGKILL");
    await within(5000, "llmrouter chat killed", exited).catch(() => {});
  }
}

test("the chat page streams an answer and shows the model, the ranking and the latency", { timeout: 180000 }, async () => {
  assert.ok(fs.existsSync(BIN), `${BIN} is missing: build it with cargo build -p llmrouter-cli`);
  assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install chromium`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "llmrouter-chat-page-"));
  let upstream, chat, browser, page;
  try {
    upstream = await startUpstream();
    const { config, candidates } = writeConfig(dir, upstream);
    const byApiId = Object.fromEntries(Object.entries(candidates).map(([key, c]) => [c.model, key]));
    const trained = spawnSync(BIN, ["--quiet", "train", "--router", "knnrouter", "--config", config], {
      encoding: "utf8", timeout: 120000,
    });
    assert.equal(trained.status, 0, `train failed: ${trained.stderr}`);

    chat = await startChat(config);
    assert.match(chat.url, /^http:\/\/127\.0\.0\.1:\d+\/$/, chat.stderr());
    assert.match(chat.stderr(), /^listening on http:\/\/127\.0\.0\.1:\d+$/m);
    const origin = new URL(chat.url).origin;

    browser = await within(60000, "chromium starting", puppeteer.launch({
      executablePath: CHROMIUM,
      headless: true,
      userDataDir: path.join(dir, "profile"),
      args: [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage",
      ],
    }));
    const chromium = browser.process();
    if (chromium) {
      children.add(chromium);
      chromium.once("exit", () => children.delete(chromium));
    }
    page = await browser.newPage();
    page.setDefaultTimeout(20000);
    page.setDefaultNavigationTimeout(20000);
    await page.setViewport({ width: 1180, height: 900 });
    const requested = [];
    const problems = [];
    page.on("request", (r) => requested.push(r.url()));
    // The bodies the page posts, by path, to check the text-routed-on choice it sends.
    const posted = [];
    page.on("request", (r) => { if (r.method() === "POST") posted.push({ path: new URL(r.url()).pathname, body: JSON.parse(r.postData() || "{}") }); });
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => { if (m.type() === "error" && !/401/.test(m.text())) problems.push(`console: ${m.text()}`); });

    await page.goto(chat.url, { waitUntil: "domcontentloaded" });

    // The key is asked for once, when /v1/models answers 401; the focus is in its field.
    await page.waitForSelector("#key-dialog[open]");
    assert.equal(await page.evaluate(() => document.activeElement && document.activeElement.id), "key-input");
    await page.keyboard.type(CLIENT_KEY);
    await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-key.png") });
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => !document.querySelector("#key-dialog").open);
    await page.waitForFunction((n) => document.querySelectorAll("#model option").length === n, {}, Object.keys(candidates).length + 1);
    assert.equal(await page.$eval("#router-name", (e) => e.textContent), "knnrouter");
    assert.equal(await page.evaluate(() => sessionStorage.getItem("llmrouter.client-key")), CLIENT_KEY);

    // First turn: auto. Enter sends; the answer streams in (seen part-way), then is whole.
    const question = "Write a Python function that checks whether a number is prime.";
    await page.focus("#input");
    await page.keyboard.type(question);
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => {
      const a = document.querySelector(".turn:last-child .answer");
      return a && a.classList.contains("pending") && a.textContent.length > 0;
    }, { polling: "mutation" });
    const partial = await page.$eval(".turn:last-child .answer", (e) => e.textContent);
    await page.waitForSelector(".turn:nth-child(1) .card.done", { timeout: 30000 });
    const first = await page.$eval(".turn:nth-child(1)", (turn) => ({
      user: turn.querySelector(".user .bubble").textContent,
      answer: turn.querySelector(".answer").textContent,
      model: turn.querySelector(".who .model").textContent,
      stats: Object.fromEntries([...turn.querySelectorAll(".stats > div")].map((d) => [d.firstChild.textContent, d.lastChild.textContent])),
      ranking: [...turn.querySelectorAll("table tbody tr")].map((r) => ({
        model: r.dataset.model, cells: [...r.children].map((c) => c.textContent),
      })),
    }));
    assert.equal(first.user, question);
    const answeredBy = byApiId[upstream.requests[0].request.model];
    assert.equal(first.model, answeredBy, "the page names the model that answered");
    assert.equal(first.answer, `Answer from ${candidates[answeredBy].model}: ${question}`);
    assert.ok(partial.length < first.answer.length && first.answer.startsWith(partial), `streamed: "${partial}" came first`);
    assert.equal(first.ranking.length, Object.keys(candidates).length, JSON.stringify(first.ranking));
    assert.equal(first.ranking[0].model, answeredBy, "the router's first choice answered");
    for (const row of first.ranking) {
      assert.match(row.cells[2], /^\d\.\d{3}$/, `a predicted score: ${row.cells}`);
      assert.match(row.cells[3], /^\$\d/, `an estimated cost: ${row.cells}`);
    }
    assert.match(first.stats["Routing"], /^\d+(\.\d+)? (µs|ms)$/, JSON.stringify(first.stats));
    assert.match(first.stats["First token"], /^\d+ ms$|^\d+\.\d+ s$/, JSON.stringify(first.stats));
    assert.match(first.stats["Total"], /^\d+ ms$|^\d+\.\d+ s$/, JSON.stringify(first.stats));
    assert.match(first.stats["Tokens"], /^12 in · \d+ out$/, JSON.stringify(first.stats));
    assert.equal(await page.evaluate(() => document.activeElement.id), "input", "the focus is back in the message box");

    // Second turn: a fixed candidate, two lines (Shift+Enter), no routing and no ranking.
    const fixed = Object.keys(candidates).find((k) => k !== answeredBy);
    await page.select("#model", fixed);
    await page.focus("#input");
    await page.keyboard.type("And in Rust?");
    await page.keyboard.down("Shift");
    await page.keyboard.press("Enter");
    await page.keyboard.up("Shift");
    await page.keyboard.type("Keep it short.");
    assert.equal(await page.$eval("#input", (e) => e.value), "And in Rust?\nKeep it short.");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".turn:nth-child(2) .card.done", { timeout: 30000 });
    const second = await page.$eval(".turn:nth-child(2)", (turn) => ({
      user: turn.querySelector(".user .bubble").textContent,
      answer: turn.querySelector(".answer").textContent,
      model: turn.querySelector(".who .model").textContent,
      rows: turn.querySelectorAll("table tbody tr").length,
    }));
    assert.deepEqual(second, {
      user: "And in Rust?\nKeep it short.",
      answer: `Answer from ${candidates[fixed].model}: And in Rust?\nKeep it short.`,
      model: fixed,
      rows: 0,
    });
    // With a fixed model nothing is routed, so the text routed on cannot be chosen.
    assert.equal(await page.$eval("#route-on", (e) => e.disabled), true, "route-on is disabled for a fixed model");
    // The conversation went upstream whole; the route call never reached it.
    assert.equal(upstream.requests.length, 2, JSON.stringify(upstream.requests.map((r) => r.request.model)));
    assert.deepEqual(upstream.requests[1].request.messages.map((m) => m.role), ["user", "assistant", "user"]);

    // Every request the page made went to this server.
    const elsewhere = requested.filter((u) => !u.startsWith(origin + "/") && !u.startsWith("data:"));
    assert.deepEqual(elsewhere, [], "no request leaves the server's origin");
    assert.deepEqual(problems, []);

    await page.evaluate(() => { document.querySelector("main").scrollTop = 0; });
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
    console.log(`screenshot: ${SCREENSHOT}`);

    // Third turn, auto again, the router's choice down: the page names the model that answered
    // after the fallback, and marks it in the ranking.
    upstream.failing.add(candidates[answeredBy].model);
    await page.select("#model", "auto");
    assert.equal(await page.$eval("#route-on", (e) => e.disabled), false, "route-on is enabled with auto");
    // Routed on the whole conversation this time: the page asks for it on both calls, and the
    // models never see the field.
    await page.select("#route-on", "conversation");
    const postedBefore = posted.length;
    await page.focus("#input");
    await page.keyboard.type(question);
    await page.keyboard.press("Enter");
    await page.waitForSelector(".turn:nth-child(3) .card.done", { timeout: 30000 });
    const third = await page.$eval(".turn:nth-child(3)", (turn) => ({
      model: turn.querySelector(".who .model").textContent,
      tags: [...turn.querySelectorAll(".who .tag")].map((t) => t.textContent),
      first: turn.querySelector("tbody tr").dataset.model,
      marked: [...turn.querySelectorAll("tbody tr")].filter((r) => r.textContent.includes("answered")).map((r) => r.dataset.model),
    }));
    const thirdPosts = posted.slice(postedBefore);
    assert.deepEqual(thirdPosts.map((p) => [p.path, p.body.route_on]),
      [["/v1/route", "conversation"], ["/v1/chat/completions", "conversation"]], JSON.stringify(thirdPosts));
    assert.ok(upstream.requests.every((r) => !("route_on" in r.request)), "route_on reached a model");
    const fellBackTo = byApiId[upstream.requests[upstream.requests.length - 1].request.model];
    assert.notEqual(fellBackTo, answeredBy);
    assert.deepEqual(third, {
      model: fellBackTo,
      tags: ["chosen by knnrouter", `fell back from ${answeredBy}`],
      first: answeredBy,
      marked: [fellBackTo],
    });
    await page.evaluate(() => { const main = document.querySelector("main"); main.scrollTop = main.scrollHeight; });
    await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-fallback.png") });
  } catch (e) {
    if (chat) console.error(`llmrouter chat's standard error:\n${chat.stderr()}`);
    if (page) {
      const shot = SCREENSHOT.replace(/\.png$/, "-failure.png");
      await within(10000, "the failure screenshot", page.screenshot({ path: shot })).then(() => console.error(`screenshot: ${shot}`), () => {});
    }
    throw e;
  } finally {
    if (browser) await within(15000, "chromium closing", browser.close()).catch(() => browser.process() && browser.process().kill("SIGKILL"));
    await stop(chat && chat.child);
    if (upstream) await within(5000, "the fake upstream closing", upstream.close()).catch(() => {});
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
