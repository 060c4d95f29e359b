//! Actors as the worker sees them: their registration ([`ActorEntry`], collected with
//! `inventory`), the [`Registry`] a worker builds from every actor linked into the binary, and
//! the handlers that decode a message's arguments and run the actor's function.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::ActorOptions;
use crate::error::{Error, Result};

/// Why one attempt of a task failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskError {
    /// What happened, for logs, the `traceback` option and workflow status.
    pub message: String,
    /// Whether retrying can help: `false` for arguments that do not decode.
    pub retryable: bool,
}

impl TaskError {
    /// A failed attempt that may be retried.
    pub fn new(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure that retrying cannot fix.
    pub fn permanent(message: impl Into<String>) -> Self {
        TaskError {
            message: message.into(),
            retryable: false,
        }
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The future of one attempt of a task.
pub type TaskFuture = Pin<Box<dyn Future<Output = Result<(), TaskError>> + Send + 'static>>;

/// Decodes the arguments of a message and starts the actor on them.
///
/// Gets `args` and `kwargs`; an `Err` means the arguments do not fit the actor's signature.
pub type Handler = fn(Vec<Value>, Map<String, Value>) -> Result<TaskFuture, TaskError>;

/// The registration of one actor, submitted to `inventory` by `#[actor]`.
#[derive(Debug)]
pub struct ActorEntry {
    /// The actor's name.
    pub name: &'static str,
    /// Its queue.
    pub queue: &'static str,
    /// Its options.
    pub options: ActorOptions,
    /// Runs it.
    pub handler: Handler,
    /// Where it is defined (`module::path` and `file:line`), for error messages.
    pub location: &'static str,
}

inventory::collect!(ActorEntry);

/// The actors a worker can run, by name.
#[derive(Clone, Debug, Default)]
pub struct Registry {
    actors: HashMap<&'static str, &'static ActorEntry>,
}

impl Registry {
    /// Every actor linked into this binary (every `#[actor]` function of every crate).
    ///
    /// Fails if two actors share a name, naming both definitions.
    pub fn linked() -> Result<Registry> {
        let mut registry = Registry::default();
        for entry in inventory::iter::<ActorEntry> {
            registry.add(entry)?;
        }
        Ok(registry)
    }

    /// Adds one actor; fails if another actor already has its name.
    pub fn add(&mut self, entry: &'static ActorEntry) -> Result<()> {
        if let Some(first) = self.actors.get(entry.name) {
            if std::ptr::eq(*first, entry) {
                return Ok(());
            }
            let (a, b) = if first.location <= entry.location {
                (first.location, entry.location)
            } else {
                (entry.location, first.location)
            };
            return Err(Error::DuplicateActor {
                name: entry.name,
                first: a.into(),
                second: b.into(),
            });
        }
        self.actors.insert(entry.name, entry);
        Ok(())
    }

    /// The actor named `name`.
    pub fn get(&self, name: &str) -> Option<&'static ActorEntry> {
        self.actors.get(name).copied()
    }

    /// All actors.
    pub fn iter(&self) -> impl Iterator<Item = &'static ActorEntry> + '_ {
        self.actors.values().copied()
    }

    /// The queues of all actors, sorted, without duplicates.
    pub fn queues(&self) -> Vec<String> {
        let mut queues: Vec<String> = self.actors.values().map(|a| a.queue.to_owned()).collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// How many actors there are.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }
}

// ---- Helpers for the code that `#[actor]` generates. Not part of the stable API. ----

/// What an actor may return: `()` or `Result<T, E>` with `T: Serialize` and `E: Display`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be the return type of an actor",
    label = "an actor returns `()` or `Result<T, E>` with `T: Serialize` and `E: Display`"
)]
pub trait ActorReturn: Send + 'static {
    /// `Err` with the error's text when the attempt failed.
    fn into_outcome(self) -> Result<(), TaskError>;
}

impl ActorReturn for () {
    fn into_outcome(self) -> Result<(), TaskError> {
        Ok(())
    }
}

impl<T: Serialize + Send + 'static, E: fmt::Display + Send + 'static> ActorReturn
    for ::core::result::Result<T, E>
{
    fn into_outcome(self) -> Result<(), TaskError> {
        self.map(drop).map_err(|e| TaskError::new(format!("{e:#}")))
    }
}

/// Checks at compile time that `T` can be an actor's return type.
#[doc(hidden)]
pub const fn assert_return<T: ActorReturn>() {}

/// Matches `args` and `kwargs` of a message with the parameters `names` of `actor`.
///
/// Python producers may pass parameters by keyword; both are accepted.
#[doc(hidden)]
pub fn bind_args(
    actor: &str,
    names: &[&str],
    mut args: Vec<Value>,
    mut kwargs: Map<String, Value>,
) -> Result<Vec<Value>, TaskError> {
    if args.len() > names.len() {
        return Err(TaskError::permanent(format!(
            "actor `{actor}` takes {} argument(s) but the message has {}",
            names.len(),
            args.len()
        )));
    }
    for name in &names[args.len()..] {
        match kwargs.remove(*name) {
            Some(v) => args.push(v),
            None => {
                return Err(TaskError::permanent(format!(
                    "actor `{actor}`: the message lacks the argument `{name}`"
                )))
            }
        }
    }
    if let Some(extra) = kwargs.keys().next() {
        return Err(TaskError::permanent(format!(
            "actor `{actor}` has no parameter named `{extra}`"
        )));
    }
    Ok(args)
}

/// Decodes the argument `name` of `actor` from its JSON value.
#[doc(hidden)]
pub fn take_arg<T: DeserializeOwned>(
    actor: &str,
    name: &str,
    value: Value,
) -> Result<T, TaskError> {
    serde_json::from_value(value).map_err(|e| {
        TaskError::permanent(format!(
            "actor `{actor}`: argument `{name}` does not decode: {e}"
        ))
    })
}

/// Runs an `async fn` actor's future and converts its output.
#[doc(hidden)]
pub fn run_async<F>(fut: F) -> TaskFuture
where
    F: Future + Send + 'static,
    F::Output: ActorReturn,
{
    Box::pin(async move { fut.await.into_outcome() })
}

/// Runs a plain `fn` actor on tokio's blocking pool and converts its output.
#[doc(hidden)]
pub fn run_blocking<F, R>(f: F) -> TaskFuture
where
    F: FnOnce() -> R + Send + 'static,
    R: ActorReturn,
{
    Box::pin(async move {
        match tokio::task::spawn_blocking(f).await {
            Ok(r) => r.into_outcome(),
            Err(e) if e.is_panic() => Err(TaskError::new(format!(
                "panicked: {}",
                panic_message(e.into_panic().as_ref())
            ))),
            Err(e) => Err(TaskError::new(format!("blocking task did not finish: {e}"))),
        }
    })
}

/// The text of a panic payload.
pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic payload".into())
}
