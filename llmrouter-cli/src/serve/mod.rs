//! `llmrouter serve`: an OpenAI-compatible gateway whose brain is a router.
//!
//! - [`settings`]: the config's `serve:` section, the flags over it, the client keys;
//! - [`api`]: the endpoints, authentication and OpenAI-shaped errors;
//! - the model client (retries, fallback, redaction) is [`crate::client`], shared with `infer`;
//! - [`sse`]: relaying a streamed answer chunk by chunk;
//! - [`limits`]: the concurrency limit and its queue, the per-key rate limit;
//! - [`metrics`]: the counters and histograms of `GET /metrics`;
//! - [`reload`]: SIGHUP builds the router again from its model file, keeping the old on an error;
//! - [`page`]: the chat page of `GET /` (and of `llmrouter chat`, which is this server on loopback).
//!
//! The router is built once before the port is bound; each routed request decides on a blocking
//! thread (`spawn_blocking`), so a slow router never stalls the async workers. No keys and a
//! non-loopback address is refused (exit 2) unless `--insecure-no-auth`. SIGINT or SIGTERM
//! stops accepting, lets in-flight requests finish for up to `serve.drain_seconds`, and exits 0;
//! SIGHUP reloads the router.
//! Connections are served by hyper's HTTP/1.1 server directly (not `axum::serve`), for its
//! header read timeout (`serve.header_timeout_seconds`).

mod access_log;
mod api;
mod limits;
mod metrics;
mod page;
mod reload;
mod settings;
mod sse;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use llmrouter_core::{MetaRouter, Router};

use crate::cli::ServeArgs;
use crate::client::{ApiKeys, Client};
use crate::output;
use crate::warnings::{warn_ignored, warn_stale_model};

/// A refusal to start that the user must fix on the command line or in the config: exit code 2.
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// `llmrouter serve`.
pub fn run(args: &ServeArgs, quiet: bool) -> Result<()> {
    start(args, quiet, false)
}

/// `llmrouter chat`: the same server, bound to 127.0.0.1 whatever the config says, and the line
/// `chat page: URL` printed after `listening on`.
pub fn chat(args: &crate::cli::ChatArgs, quiet: bool) -> Result<()> {
    start(&args.to_serve(), quiet, true)
}

/// Builds the router, binds, and serves until SIGINT or SIGTERM; `chat` names the command and
/// prints the chat page's URL.
fn start(args: &ServeArgs, quiet: bool, chat: bool) -> Result<()> {
    let registration = crate::plugins::find(&args.router)?;
    let meta = MetaRouter::from_yaml(&args.config, registration.name)?;
    let section: settings::ServeSection = meta.config.section("serve")?;
    let settings = settings::Settings::resolve(section, args, |name| std::env::var(name).ok())?;
    let addresses = settings.addresses()?;
    if settings.keys.is_empty() && !settings::all_loopback(&addresses) && !args.insecure_no_auth {
        return Err(UsageError(format!(
            "refusing to serve on `{}` without client keys: anyone who reaches it could spend your upstream \
             credit. Set `serve.keys` in the config or {} (comma-separated), bind to 127.0.0.1, or pass \
             --insecure-no-auth",
            settings.host,
            settings::SERVER_KEYS_VAR
        ))
        .into());
    }
    warn_ignored(&meta, quiet);
    warn_stale_model(&meta, quiet);
    let candidates = meta.candidates.clone();
    let default_endpoint = meta.config.api_endpoint.clone();
    let router_name = registration.name.to_owned();
    let router: Arc<dyn Router> =
        Arc::from((registration.build)(meta).with_context(|| format!("building router `{}`", registration.name))?);
    let reloader = reload::Reloader { registration, config: args.config.clone(), candidates: candidates.clone() };
    let keys = ApiKeys::from_env(candidates.all())?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the runtime")?;
    runtime.block_on(async move {
        let upstream = Client::new(settings.client.clone(), keys, default_endpoint)
            .context("setting up TLS with the platform's certificates")?;
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let prices = candidates.all().iter().map(|c| (c.name.clone(), c.input_price, c.output_price)).collect();
        let metrics = metrics::Metrics::new(&router_name, prices);
        let state = Arc::new(api::AppState {
            router: reload::LiveRouter::new(router),
            route_us_average: std::sync::atomic::AtomicU64::new(0),
            router_name: router_name.clone(),
            candidates,
            upstream,
            route_on: settings.route_on,
            keys: settings.keys.clone(),
            max_fallbacks: settings.max_fallbacks,
            started,
            gate: limits::Gate::new(settings.max_concurrency, settings.max_queue),
            metrics,
            access_log: settings.access_log,
            log: access_log::AccessLog::start(),
            log_prompts: settings.log_prompts,
            rate_limit: settings.rate_limit_rpm.map(|rpm| limits::RateLimit::new(rpm, settings.keys.len())),
        });
        let app = api::app(Arc::clone(&state), settings.max_body_bytes);
        let at_exit = Arc::clone(&state);
        // Listening for SIGHUP before the port is announced: from then on a hangup reloads, never kills.
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => {
                tokio::spawn(reload_on_hangup(hangups, state, reloader));
            }
            Err(e) => eprintln!("reload: cannot listen for SIGHUP ({e}); the router will not be reloaded"),
        }
        #[cfg(not(unix))]
        let _ = (state, reloader);
        let listener = tokio::net::TcpListener::bind(addresses.as_slice())
            .await
            .with_context(|| format!("cannot listen on {}:{}", settings.host, settings.port))?;
        let bound = listener.local_addr().context("the bound address")?;
        let auth = if settings.keys.is_empty() { "no client keys" } else { "client keys required" };
        let command = if chat { "chat" } else { "serve" };
        output::info(quiet, &format!("llmrouter {command}: router `{router_name}`, {auth}"));
        // Always printed: scripts and tests read the port from it.
        eprintln!("listening on http://{bound}");
        if chat {
            eprintln!("chat page: http://{bound}/");
        }
        let header_timeout = settings.header_timeout;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let stop = shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        // Out of file descriptors and the like: wait a little rather than spin.
                        Err(_) => {
                            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let _ = stream.set_nodelay(true);
                    let service = hyper_util::service::TowerToHyperService::new(app.clone());
                    let mut http = hyper::server::conn::http1::Builder::new();
                    // A client that has not sent its whole header in time is dropped (slow loris).
                    http.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
                    let connection = graceful.watch(http.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                () = &mut stop => break,
            }
        }
        drop(listener);
        let drain = settings.drain;
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(drain) => {
                eprintln!("stopping: requests still in flight after {:.0} s", drain.as_secs_f64());
            }
        }
        at_exit.log.flush();
        output::info(quiet, "stopped");
        Ok(())
    })
}

/// Each SIGHUP builds the router again (off the async workers: a model file may be large) and
/// swaps it in; on an error the old router stays. Either way one line on standard error says so.
#[cfg(unix)]
async fn reload_on_hangup(
    mut hangups: tokio::signal::unix::Signal,
    state: Arc<api::AppState>,
    reloader: reload::Reloader,
) {
    let reloader = Arc::new(reloader);
    while hangups.recv().await.is_some() {
        let (state, reloader) = (Arc::clone(&state), Arc::clone(&reloader));
        let done = tokio::task::spawn_blocking(move || {
            let outcome = reloader.reload(&state.router);
            state.metrics.reloaded(outcome.is_ok());
            outcome
        })
        .await;
        match done {
            Ok(Ok(what)) => eprintln!("reload: {what}"),
            Ok(Err(e)) => eprintln!("reload failed, keeping the old router: {e:#}"),
            Err(_) => eprintln!("reload failed, keeping the old router: building the router panicked"),
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
