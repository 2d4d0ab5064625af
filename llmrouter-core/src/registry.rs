//! The router registry: every router crate submits a [`RouterRegistration`] with
//! [`register_router!`](crate::register_router); the binary looks routers up by name.
//!
//! Registrations are collected by `inventory` at link time. The map is built once, sorted by
//! name, so output never depends on link order; a duplicate name is an error.

use std::sync::OnceLock;

use crate::error::{Error, Result};
use crate::meta::MetaRouter;
pub use crate::names::{edit_distance, is_valid_name, suggest};
use crate::router::{Device, Router, Trainer};

/// Builds a boxed router from its config and data.
pub type BuildFn = fn(MetaRouter) -> Result<Box<dyn Router>>;
/// Builds a boxed trainer from its config, data and device.
pub type TrainFn = fn(MetaRouter, Device) -> Result<Box<dyn Trainer>>;

/// What a router crate registers: static strings and function pointers only.
#[derive(Debug)]
pub struct RouterRegistration {
    /// The router name: lower case, equal to the crate's package name and Cargo feature.
    pub name: &'static str,
    /// Other names [`find`] accepts for it (LLMRouter's names, say `dcrouter` for `routerdc`);
    /// commands then work under [`RouterRegistration::name`] (model paths, reports).
    pub aliases: &'static [&'static str],
    /// One line shown by `llmrouter list-routers`.
    pub summary: &'static str,
    /// Longer documentation (the crate's README), shown by `list-routers --long`.
    pub docs: &'static str,
    /// The package that registered it (`CARGO_PKG_NAME` of the router crate).
    pub package: &'static str,
    /// The package's folder at build time (`CARGO_MANIFEST_DIR`), to tell where it came from.
    pub manifest_dir: &'static str,
    /// Builds the router.
    pub build: BuildFn,
    /// Builds the trainer, when the router learns from routing data.
    pub train: Option<TrainFn>,
    /// Whether the router predicts per-model scores ([`Router::predicts_scores`]): then a cost
    /// weight steers it, and `eval` and `calibrate` sweep it.
    pub predicts_scores: fn() -> bool,
}

inventory::collect!(RouterRegistration);

/// Registers a router type. Use it once per router crate, at module level:
///
/// ```ignore
/// llmrouter_core::register_router! {
///     router: MyRouter,                      // must implement llmrouter_core::Router
///     name: "my_router",                     // the folder, package and feature name
///     summary: "One line for list-routers",
///     docs: include_str!("../README.md"),
///     aliases: ["my_old_name"],              // optional; other names `find` accepts
///     trainer: MyTrainer,                    // optional; must implement llmrouter_core::Trainer
/// }
/// ```
///
/// A type that does not implement [`Router`] fails to compile here, with an error that names the
/// trait.
#[macro_export]
macro_rules! register_router {
    (
        router: $router:ty,
        name: $name:literal,
        summary: $summary:expr,
        docs: $docs:expr
        $(, aliases: [$($alias:literal),* $(,)?])?
        $(, trainer: $trainer:ty)?
        $(,)?
    ) => {
        $crate::__private::inventory::submit! {
            $crate::registry::RouterRegistration {
                name: $name,
                aliases: &[$($($alias),*)?],
                summary: $summary,
                docs: $docs,
                package: env!("CARGO_PKG_NAME"),
                manifest_dir: env!("CARGO_MANIFEST_DIR"),
                build: $crate::__build_fn!($router $(, $trainer)?),
                train: $crate::__trainer_fn!($($trainer)?),
                predicts_scores: <$router as $crate::Router>::predicts_scores,
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __trainer_fn {
    () => {
        None
    };
    ($trainer:ty) => {
        Some($crate::registry::build_trainer::<$trainer>)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __build_fn {
    ($router:ty) => {
        $crate::registry::build_router::<$router>
    };
    ($router:ty, $trainer:ty) => {
        $crate::registry::build_checked_router::<$router, $trainer>
    };
}

/// The [`BuildFn`] of a router that trains: its trainer checks the config's `hparam` first
/// ([`Trainer::check_config`]), so a typo or a value out of range there is the same error on
/// every command that reads the config, not only at `train`.
pub fn build_checked_router<R: Router + 'static, T: Trainer + 'static>(meta: MetaRouter) -> Result<Box<dyn Router>> {
    T::check_config(&meta)?;
    build_router::<R>(meta)
}

/// The [`BuildFn`] of router type `R`.
/// A calibration stored in the model file sets the cost weight first
/// ([`MetaRouter::apply_calibration`]), so every router built from that file honours it.
pub fn build_router<R: Router + 'static>(mut meta: MetaRouter) -> Result<Box<dyn Router>> {
    meta.apply_calibration()?;
    Ok(Box::new(R::from_meta(meta)?))
}

/// The [`TrainFn`] of trainer type `T`.
pub fn build_trainer<T: Trainer + 'static>(meta: MetaRouter, device: Device) -> Result<Box<dyn Trainer>> {
    Ok(Box::new(T::from_meta(meta, device)?))
}

/// Every registered router, sorted by name; an error when two share a name.
pub fn all() -> Result<&'static [&'static RouterRegistration]> {
    static REGISTRY: OnceLock<std::result::Result<Vec<&'static RouterRegistration>, (String, String, String)>> =
        OnceLock::new();
    let built = REGISTRY.get_or_init(|| {
        let mut list: Vec<&'static RouterRegistration> = inventory::iter::<RouterRegistration>.into_iter().collect();
        list.sort_by(|a, b| a.name.cmp(b.name).then(a.package.cmp(b.package)));
        // Every name and alias, with its package: one name may not stand for two routers.
        let mut taken: Vec<(&str, &str)> = list
            .iter()
            .flat_map(|r| std::iter::once(r.name).chain(r.aliases.iter().copied()).map(|n| (n, r.package)))
            .collect();
        taken.sort_unstable();
        for pair in taken.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err((pair[0].0.to_owned(), pair[0].1.to_owned(), pair[1].1.to_owned()));
            }
        }
        Ok(list)
    });
    match built {
        Ok(list) => Ok(list),
        Err((name, first, second)) => {
            Err(Error::DuplicateRouter { name: name.clone(), first: first.clone(), second: second.clone() })
        }
    }
}

/// The registered routers that predict per-model scores, sorted by name.
pub fn score_predictors() -> Result<Vec<&'static str>> {
    Ok(all()?.iter().filter(|r| (r.predicts_scores)()).map(|r| r.name).collect())
}

/// Names of every registered router, sorted.
pub fn names() -> Result<Vec<&'static str>> {
    Ok(all()?.iter().map(|r| r.name).collect())
}

/// The router called `name`, or [`Error::UnknownRouter`] with the closest names and the full list.
pub fn find(name: &str) -> Result<&'static RouterRegistration> {
    let list = all()?;
    if let Some(found) = list.iter().find(|r| r.name == name || r.aliases.contains(&name)) {
        return Ok(found);
    }
    let available: Vec<String> = list.iter().map(|r| r.name.to_owned()).collect();
    Err(Error::UnknownRouter {
        name: name.to_owned(),
        suggestions: suggest(name, &available),
        available,
        hints: Vec::new(),
    })
}
