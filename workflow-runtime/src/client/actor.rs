//! Actors as the client sees them: the [`Actor`] trait that `#[actor]` implements, its options,
//! and [`TypedMessage`], a message that knows its actor at the type level.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::broker::Broker;
use crate::engine::Message;
use crate::error::{Error, Result};

/// An actor: a named function that a worker runs for each message sent to it.
///
/// Implemented by `#[actor]` on a hidden type with the function's name, so that
/// `resize::message(..)` builds a message for the actor `resize`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an actor",
    label = "not an actor",
    note = "add #[actor] to the function `{Self}` to make it one"
)]
pub trait Actor: 'static {
    /// The actor's name on the wire (`actor_name`).
    const NAME: &'static str;
    /// The queue its messages go to.
    const QUEUE: &'static str;
    /// The options given in `#[actor(...)]`.
    const OPTIONS: ActorOptions;
}

/// Options of an actor; `None` means the worker's default.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorOptions {
    /// How many times a failed message is retried (default 20).
    pub max_retries: Option<u32>,
    /// The first retry's backoff (default 15 s).
    pub min_backoff: Option<Duration>,
    /// The largest backoff (default 7 days).
    pub max_backoff: Option<Duration>,
    /// How long one attempt may run (default 10 minutes).
    pub time_limit: Option<Duration>,
    /// Messages older than this are dead-lettered without running (default: no limit).
    pub max_age: Option<Duration>,
}

impl ActorOptions {
    /// No option set.
    pub const NONE: ActorOptions = ActorOptions {
        max_retries: None,
        min_backoff: None,
        max_backoff: None,
        time_limit: None,
        max_age: None,
    };
}

/// A message for the actor `A`, built by the constructor that `#[actor]` generates
/// (`resize::message(42, 640)`).
///
/// Options set here override the actor's for this one message; they travel in `options` under
/// dramatiq's names (`max_retries`, `min_backoff`, `max_backoff` and `time_limit`, `max_age` in ms).
pub struct TypedMessage<A> {
    message: Result<Message, (&'static str, String)>,
    delay: Option<Duration>,
    _actor: PhantomData<fn() -> A>,
}

impl<A> Clone for TypedMessage<A> {
    fn clone(&self) -> Self {
        TypedMessage {
            message: self.message.clone(),
            delay: self.delay,
            _actor: PhantomData,
        }
    }
}

impl<A> fmt::Debug for TypedMessage<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TypedMessage")
            .field("message", &self.message)
            .field("delay", &self.delay)
            .finish()
    }
}

impl<A: Actor> TypedMessage<A> {
    /// Builds the message from arguments already converted with [`to_arg`](crate::actor::to_arg).
    #[doc(hidden)]
    pub fn from_args<const N: usize>(args: [serde_json::Result<Value>; N]) -> Self {
        let message = args
            .into_iter()
            .collect::<serde_json::Result<Vec<_>>>()
            .map(|args| Message::new(A::QUEUE, A::NAME, args))
            .map_err(|e| (A::NAME, e.to_string()));
        TypedMessage {
            message,
            delay: None,
            _actor: PhantomData,
        }
    }

    /// Runs the message no earlier than `delay` from when it is sent.
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Overrides the actor's `max_retries` for this message.
    pub fn with_max_retries(self, max_retries: u32) -> Self {
        self.with_option("max_retries", Value::from(max_retries))
    }

    /// Overrides the actor's `min_backoff` for this message.
    pub fn with_min_backoff(self, backoff: Duration) -> Self {
        self.with_option("min_backoff", millis_value(backoff))
    }

    /// Overrides the actor's `max_backoff` for this message.
    pub fn with_max_backoff(self, backoff: Duration) -> Self {
        self.with_option("max_backoff", millis_value(backoff))
    }

    /// Overrides the actor's `time_limit` for this message.
    pub fn with_time_limit(self, limit: Duration) -> Self {
        self.with_option("time_limit", millis_value(limit))
    }

    /// Overrides the actor's `max_age` for this message.
    pub fn with_max_age(self, age: Duration) -> Self {
        self.with_option("max_age", millis_value(age))
    }

    /// Sets any option (dramatiq's or your own) on the message.
    pub fn with_option(mut self, key: impl Into<String>, value: Value) -> Self {
        if let Ok(m) = &mut self.message {
            m.options.insert(key.into(), value);
        }
        self
    }

    /// The delay given with [`with_delay`](Self::with_delay).
    pub fn delay(&self) -> Option<Duration> {
        self.delay
    }

    /// The wire message, or the error met while encoding an argument.
    pub fn into_message(self) -> Result<Message> {
        self.message.map_err(|(actor, e)| Error::Encode {
            actor,
            source: <serde_json::Error as serde::de::Error>::custom(e),
        })
    }

    /// The wire message and the delay, or the error met while encoding an argument.
    pub fn into_parts(self) -> Result<(Message, Option<Duration>)> {
        let delay = self.delay;
        self.into_message().map(|m| (m, delay))
    }

    /// Enqueues the message on `broker`; returns its `message_id`.
    pub async fn send<B: Broker + ?Sized>(self, broker: &B) -> Result<String> {
        let (message, delay) = self.into_parts()?;
        let id = message.message_id.clone();
        broker.enqueue(message, delay).await?;
        Ok(id)
    }
}

fn millis_value(d: Duration) -> Value {
    Value::from(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

// ---- Helpers for the code that `#[actor]` generates. Not part of the stable API. ----

/// A type that can be an actor's parameter: serializable and owned.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a parameter of an actor",
    label = "must implement serde's `Serialize` and `DeserializeOwned`, and be `Send + 'static`",
    note = "actor arguments travel as JSON: derive `serde::Serialize` and `serde::Deserialize` for `{Self}`"
)]
pub trait ActorArg: Serialize + DeserializeOwned + Send + 'static {}
#[diagnostic::do_not_recommend]
impl<T: Serialize + DeserializeOwned + Send + 'static> ActorArg for T {}

/// Checks at compile time that `T` can be an actor parameter.
#[doc(hidden)]
pub const fn assert_arg<T: ActorArg>() {}

/// Converts one argument to JSON.
#[doc(hidden)]
pub fn to_arg<T: Serialize>(value: &T) -> serde_json::Result<Value> {
    serde_json::to_value(value)
}
