//! The error type of the core library: every variant names the file, line or key it is about.

use std::fmt;
use std::path::PathBuf;

/// Result with the core [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in core. Display strings are one readable paragraph; the
/// underlying cause (an I/O or parse error) is available through `source()`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done ("read", "write", "create folder for").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },

    /// The config file itself does not exist.
    #[error("config file not found: {} (resolved against the working directory: {})", given, tried.display())]
    ConfigNotFound {
        /// The path as the user gave it.
        given: String,
        /// The absolute path that was tried.
        tried: PathBuf,
    },

    /// The config file is not valid YAML, or a key has the wrong type or is unknown.
    #[error("{}{}: {message}", path.display(), location_suffix(*line, *column))]
    Config {
        /// The config file.
        path: PathBuf,
        /// 1-based line, when known.
        line: Option<usize>,
        /// 1-based column, when known.
        column: Option<usize>,
        /// What is wrong, naming the key (`hparam.threshold: invalid type ...`).
        message: String,
    },

    /// A path named in the config does not exist anywhere it was looked for.
    #[error("{}: `{key}` names {value:?}, which does not exist; tried {}", config.display(), list_paths(tried))]
    PathNotFound {
        /// The config file.
        config: PathBuf,
        /// The key, e.g. `data_path.llm_data`.
        key: String,
        /// The value as written in the config.
        value: String,
        /// Every absolute path that was tried, in order.
        tried: Vec<PathBuf>,
    },

    /// A required config key is absent.
    #[error("{}: missing key `{key}`: {why}", config.display())]
    MissingKey {
        /// The config file.
        config: PathBuf,
        /// The dotted key path.
        key: String,
        /// What it is needed for.
        why: String,
    },

    /// A line of a data file is malformed.
    #[error("{}:{line}: {message}", path.display())]
    DataLine {
        /// The data file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong with the line.
        message: String,
    },

    /// A data file is malformed as a whole (not one line of it).
    #[error("{}: {message}", path.display())]
    Data {
        /// The data file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// No compiled-in router has this name.
    #[error("{}", unknown_router_message(name, suggestions, available, hints))]
    UnknownRouter {
        /// The name asked for.
        name: String,
        /// Close names, best first.
        suggestions: Vec<String>,
        /// Every router in this binary, sorted.
        available: Vec<String>,
        /// Extra lines, such as router crates on disk that this binary does not contain.
        hints: Vec<String>,
    },

    /// Two registrations share a name.
    #[error("router name `{name}` is registered twice (packages `{first}` and `{second}`)")]
    DuplicateRouter {
        /// The duplicated name.
        name: String,
        /// Package of the first registration.
        first: String,
        /// Package of the second registration.
        second: String,
    },

    /// A saved model file is missing, corrupt, or belongs to something else.
    #[error("model file {}: {message}", path.display())]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong and what to do about it.
        message: String,
    },

    /// A router rejected its input or setup.
    #[error("{router}: {message}")]
    Router {
        /// The router name.
        router: String,
        /// What is wrong.
        message: String,
    },

    /// The router has no trainer.
    #[error("router `{router}` has nothing to train: it routes from the candidate list alone")]
    NotTrainable {
        /// The router name.
        router: String,
    },

    /// A device other than the CPU was asked for.
    #[error("device `{0}` is not supported by this build; use `--device cpu`")]
    UnsupportedDevice(String),

    /// No compiled-in embedding backend has this name.
    #[error("{}", unknown_backend_message(name, suggestions, available))]
    UnknownEmbeddingBackend {
        /// The name asked for (`embedding.backend`).
        name: String,
        /// Close names, best first.
        suggestions: Vec<String>,
        /// Every backend in this binary, sorted.
        available: Vec<String>,
    },

    /// Two embedding backends share a name.
    #[error("embedding backend `{0}` is registered twice")]
    DuplicateEmbeddingBackend(String),

    /// A worker thread of a parallel stage panicked: the stage's result is unusable.
    #[error("{stage}: a worker thread panicked ({message}); no result of this stage was used")]
    WorkerPanicked {
        /// What was running (`"knnrouter: predicting scores"`).
        stage: String,
        /// The panic's message.
        message: String,
    },

    /// Inputs that do not fit together (evaluation data and predictions, a budget and a router).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { action, path: path.into(), source }
    }

    /// Reads the text file at `path` (`action` as for [`Error::io`]). Bytes that are not UTF-8
    /// are an error naming the line and column where they start.
    pub fn read_text(action: &'static str, path: &std::path::Path) -> Result<String> {
        if path.is_dir() {
            return Err(Error::Data { path: path.to_owned(), message: "is a directory, not a file".into() });
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(action, path, e))?;
        String::from_utf8(bytes).map_err(|e| {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let column = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
            Error::DataLine {
                path: path.to_owned(),
                line,
                message: format!("invalid UTF-8 at byte {column} of the line; the file must be UTF-8 text"),
            }
        })
    }

    /// Shorthand for [`Error::Router`].
    pub fn router(router: impl Into<String>, message: impl fmt::Display) -> Self {
        Error::Router { router: router.into(), message: message.to_string() }
    }

    /// Shorthand for [`Error::Model`].
    pub fn model(path: impl Into<PathBuf>, message: impl fmt::Display) -> Self {
        Error::Model { path: path.into(), message: message.to_string() }
    }
}

fn location_suffix(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", then ")
}

fn unknown_router_message(name: &str, suggestions: &[String], available: &[String], hints: &[String]) -> String {
    let mut msg = format!("Unknown router: {name}");
    if !suggestions.is_empty() {
        msg.push_str(&format!("\n  did you mean: {}?", suggestions.join(", ")));
    }
    if available.is_empty() {
        msg.push_str("\n  this binary contains no routers (it was built without router features)");
    } else {
        msg.push_str(&format!("\n  routers in this binary: {}", available.join(", ")));
    }
    for hint in hints {
        msg.push_str(&format!("\n  {hint}"));
    }
    msg
}

fn unknown_backend_message(name: &str, suggestions: &[String], available: &[String]) -> String {
    let mut out = format!("Unknown embedding backend: {name}");
    if !suggestions.is_empty() {
        out.push_str(&format!("\n  did you mean: {}?", suggestions.join(", ")));
    }
    out.push_str(&format!("\n  backends in this binary: {}", available.join(", ")));
    out
}
