//! Warnings about a router config that every subcommand reading one prints the same way (on
//! standard error, silenced by `--quiet`): LLMRouter keys accepted but not used, and a model file
//! trained with other settings than the config has now.

use llmrouter_core::MetaRouter;

use crate::output;

/// Warns when the router's model file was trained with other `hparam` / `embedding` settings
/// than the config has now (models written before this check carry no fingerprint: no warning).
pub fn warn_stale_model(meta: &MetaRouter, quiet: bool) {
    let router = meta.router_name();
    let Ok(path) = meta.config.load_model_path(router) else { return };
    let (Ok(file), Ok(now)) = (meta.model_file(), meta.config.training_hash()) else { return };
    // A file of another router or other candidates is refused when the router is built: that
    // error is the one to see, not a warning about settings before it.
    if file.check(router, &meta.candidates.names()).is_err() {
        return;
    }
    let Some(trained) = &file.training_hash else { return };
    if *trained != now {
        output::info(
            quiet,
            &format!(
                "warning: {} was trained with other `hparam` / `embedding` settings than {} has now; \
                 retrain to use them: llmrouter train --router {router} --config {}",
                path.display(),
                meta.config.path().display(),
                meta.config.path().display()
            ),
        );
    }
}

/// Warns about LLMRouter keys that are accepted but have no effect here.
pub fn warn_ignored(meta: &MetaRouter, quiet: bool) {
    for key in &meta.config.ignored_keys {
        output::info(
            quiet,
            &format!(
                "warning: {}: `{key}` is accepted for Python LLMRouter compatibility but not used \
                 (routers here compute their own query features)",
                meta.config.path().display()
            ),
        );
    }
}
