//! Build-time plugin discovery, end to end, in a temporary copy of the repository:
//! `cargo xtask new-router`, a router crate in `$LLMROUTER_PLUGINS` and one in
//! `~/.llmrouter/plugins` (a temporary HOME), `cargo xtask plugins`, `cargo build`, then the
//! binary lists all three with their origin and routes with the new one. Also: bad plugins,
//! stale wiring, and binaries built with one router and with none.
//!
//! Slow (it builds the CLI in `target/e2e`), so it runs as one test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use llmrouter_tests::{temp_dir, workspace_root};

struct Env {
    repo: PathBuf,
    home: PathBuf,
    env_plugins: PathBuf,
    target: PathBuf,
}

impl Env {
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let real_home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&self.repo)
            .env("HOME", &self.home)
            .env("LLMROUTER_PLUGINS", &self.env_plugins)
            .env("CARGO_TARGET_DIR", &self.target)
            .env(
                "CARGO_HOME",
                std::env::var_os("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|| real_home.join(".cargo")),
            )
            .env(
                "RUSTUP_HOME",
                std::env::var_os("RUSTUP_HOME").map(PathBuf::from).unwrap_or_else(|| real_home.join(".rustup")),
            )
            .env("CARGO_TERM_COLOR", "never");
        cmd
    }

    fn cargo(&self, args: &[&str]) -> Output {
        self.command(env!("CARGO"), args).output().expect("run cargo")
    }

    fn llmrouter(&self, args: &[&str]) -> Output {
        let bin = self.target.join("debug/llmrouter");
        self.command(bin.to_str().expect("utf8"), args).output().expect("run llmrouter")
    }
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn ok(o: Output, what: &str) -> String {
    assert!(o.status.success(), "{what} failed:\n{}", text(&o));
    text(&o)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir").flatten() {
        let name = entry.file_name();
        if [".git", "target", ".plugins", "saved_models"].iter().any(|s| name == *s) {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            copy_tree(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).expect("copy");
        }
    }
}

fn names(json: &str) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("json: {e}\n{json}"));
    v.as_array()
        .expect("array")
        .iter()
        .map(|r| (r["name"].as_str().expect("name").to_owned(), r["origin"].as_str().expect("origin").to_owned()))
        .collect()
}

#[test]
fn plugins_from_every_folder_are_found_compiled_in_and_listed() {
    let tmp = temp_dir("plugins-e2e");
    let env = Env {
        repo: tmp.join("repo"),
        home: tmp.join("home"),
        env_plugins: tmp.join("env-plugins"),
        target: workspace_root().join("target/e2e"),
    };
    copy_tree(&workspace_root(), &env.repo);
    let home_plugins = env.home.join(".llmrouter/plugins");
    std::fs::create_dir_all(&home_plugins).expect("mkdir");
    std::fs::create_dir_all(&env.env_plugins).expect("mkdir");

    // From nothing: three new router crates from the template.
    ok(env.cargo(&["xtask", "new-router", "my_router"]), "new-router my_router");
    ok(
        env.cargo(&["xtask", "new-router", "home_router", "--destination", home_plugins.to_str().expect("utf8")]),
        "home",
    );
    ok(
        env.cargo(&["xtask", "new-router", "env_router", "--destination", env.env_plugins.to_str().expect("utf8")]),
        "env",
    );

    // The check sees they are not wired yet, and names the fix.
    let stale = env.cargo(&["xtask", "plugins", "--check"]);
    assert!(!stale.status.success(), "stale wiring must fail the check");
    assert!(
        text(&stale).contains("run `cargo xtask plugins`") && text(&stale).contains("+ my_router = "),
        "{}",
        text(&stale)
    );

    let log = ok(env.cargo(&["xtask", "plugins", "--verbose"]), "xtask plugins");
    for line in ["found my_router", "found home_router", "found env_router", "linked .plugins/home_router"] {
        assert!(log.contains(line), "discovery log lacks {line:?}:\n{log}");
    }
    ok(env.cargo(&["xtask", "plugins", "--check"]), "check after regeneration");
    ok(env.cargo(&["build", "-p", "llmrouter-cli"]), "cargo build");

    let listed = names(&ok(env.llmrouter(&["list-routers", "--format", "json"]), "list-routers"));
    for (name, origin) in [
        ("my_router", "./custom_routers"),
        ("home_router", "~/.llmrouter/plugins"),
        ("env_router", "$LLMROUTER_PLUGINS"),
    ] {
        assert!(listed.contains(&(name.to_owned(), origin.to_owned())), "{name} from {origin} in {listed:?}");
    }
    let out = ok(
        env.llmrouter(&[
            "infer",
            "--router",
            "my_router",
            "--config",
            "custom_routers/my_router/config.yaml",
            "--query",
            "What is machine learning?",
            "--route-only",
        ]),
        "infer with my_router",
    );
    let decision: serde_json::Value = serde_json::from_str(out.trim()).expect("decision json");
    assert_eq!(decision["model_name"], "gemma-2-9b-it", "a short query goes to the cheapest candidate");
    assert_eq!(decision["router"], "my_router");

    // The generated crate passes the conformance suite.
    ok(env.cargo(&["test", "-p", "my_router"]), "cargo test -p my_router");

    // A crate added without regenerating: the binary says it is not compiled in, and how to fix it.
    ok(env.cargo(&["xtask", "new-router", "late_router"]), "new-router late_router");
    let listing = ok(env.llmrouter(&["list-routers"]), "list-routers");
    assert!(listing.contains("late_router") && listing.contains("cargo xtask plugins && cargo build"), "{listing}");
    let unknown =
        env.llmrouter(&["infer", "--router", "late_router", "--config", "x.yaml", "--query", "q", "--route-only"]);
    assert!(
        text(&unknown).contains("Unknown router: late_router")
            && text(&unknown).contains("not compiled into this binary"),
        "{}",
        text(&unknown)
    );
    let stale = env.cargo(&["xtask", "plugins", "--check"]);
    assert!(!stale.status.success() && text(&stale).contains("run `cargo xtask plugins`"), "{}", text(&stale));
    std::fs::remove_dir_all(env.repo.join("custom_routers/late_router")).expect("remove");

    // Bad plugins are refused with precise messages.
    let bad = env.repo.join("custom_routers/BadRouter");
    copy_tree(&env.repo.join("custom_routers/my_router"), &bad);
    let o = env.cargo(&["xtask", "plugins"]);
    assert!(!o.status.success() && text(&o).contains("folder name `BadRouter` is not a router name"), "{}", text(&o));
    std::fs::remove_dir_all(&bad).expect("remove");
    copy_tree(&env.repo.join("custom_routers/my_router"), &env.env_plugins.join("my_router"));
    let o = env.cargo(&["xtask", "plugins"]);
    assert!(!o.status.success() && text(&o).contains("router `my_router` is defined twice"), "{}", text(&o));
    std::fs::remove_dir_all(env.env_plugins.join("my_router")).expect("remove");

    // Features pick routers: one router, then none.
    ok(
        env.cargo(&["build", "-p", "llmrouter-cli", "--no-default-features", "--features", "randomrouter"]),
        "one feature",
    );
    let listed = names(&ok(env.llmrouter(&["list-routers", "--format", "json"]), "list-routers"));
    assert_eq!(listed, vec![("randomrouter".to_owned(), "./custom_routers".to_owned())]);
    let unknown =
        env.llmrouter(&["infer", "--router", "my_router", "--config", "x.yaml", "--query", "q", "--route-only"]);
    assert!(text(&unknown).contains("cargo build -p llmrouter-cli --features my_router"), "{}", text(&unknown));
    ok(env.cargo(&["build", "-p", "llmrouter-cli", "--no-default-features"]), "no features");
    assert_eq!(names(&ok(env.llmrouter(&["list-routers", "--format", "json"]), "list-routers")), vec![]);

    // cargo-generate, when installed, renders the same files as `cargo xtask new-router`.
    let has_cargo_generate = env.cargo(&["generate", "--version"]).status.success();
    if has_cargo_generate {
        let out = tmp.join("generated");
        ok(
            env.cargo(&[
                "generate",
                "--path",
                "templates/router",
                "--name",
                "gen_router",
                "--destination",
                out.to_str().expect("utf8"),
                "--silent",
                "--vcs",
                "none",
            ]),
            "cargo generate",
        );
        ok(
            env.cargo(&[
                "xtask",
                "new-router",
                "gen_router",
                "--destination",
                tmp.join("xtask").to_str().expect("utf8"),
            ]),
            "new",
        );
        for file in ["Cargo.toml", "README.md", "config.yaml", "src/lib.rs", "tests/conformance.rs"] {
            let a = std::fs::read_to_string(out.join("gen_router").join(file)).expect("cargo-generate output");
            let b = std::fs::read_to_string(tmp.join("xtask/gen_router").join(file)).expect("xtask output");
            assert_eq!(a.trim_end(), b.trim_end(), "{file} differs between cargo generate and xtask new-router");
        }
    } else {
        eprintln!(
            "cargo-generate is not installed: compared nothing with it (xtask new-router renders the same template)"
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}
