//! The error type of the runtime.

use std::time::Duration;

/// A `Result` whose error defaults to [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the runtime.
///
/// Every variant says what happened and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument of a message could not be turned into JSON.
    #[error("could not encode an argument of actor `{actor}` as JSON: {source}")]
    Encode {
        /// The actor whose message was being built.
        actor: &'static str,
        /// What serde_json reported.
        #[source]
        source: serde_json::Error,
    },
    /// A payload is not a message this runtime (or dramatiq) can read.
    #[error("undecodable message: {0}")]
    Decode(String),
    /// Two actors linked into one binary have the same name.
    #[error(
        "two actors are named `{name}`: one at {first}, one at {second}; give one of them \
         another name with #[actor(name = \"...\")]"
    )]
    DuplicateActor {
        /// The shared name.
        name: &'static str,
        /// Where the first definition is.
        first: String,
        /// Where the second definition is.
        second: String,
    },
    /// A queue name that dramatiq would reject.
    #[error("invalid queue name `{0}`: it must match [a-zA-Z_][a-zA-Z0-9._-]*")]
    InvalidQueueName(String),
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Waiting for something took longer than allowed.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No workflow with this id is known to the broker (never submitted, or its state expired).
    #[error("unknown workflow `{0}`: it was never submitted or its state has expired")]
    UnknownWorkflow(String),
    /// The workflow failed.
    #[error("workflow {id} failed at node {node} (actor `{actor}`): {error}")]
    WorkflowFailed {
        /// The workflow.
        id: String,
        /// The node that failed.
        node: u32,
        /// The actor of that node.
        actor: String,
        /// Why it failed.
        error: String,
    },
    /// The workflow was cancelled.
    #[error("workflow {0} was cancelled")]
    WorkflowCancelled(String),
    /// The broker failed (connection lost, server error, script error).
    #[error("broker error: {0}")]
    Broker(String),
    /// An error from the Redis client.
    #[cfg(feature = "redis")]
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
}

impl Error {
    /// Whether trying the same operation again later may succeed: a lost connection, a
    /// timeout, a server that is loading or failing over. Script errors, bad data and
    /// configuration errors are not transient.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Timeout(_) => true,
            #[cfg(feature = "redis")]
            Error::Redis(e) => match e.code() {
                // A script or command that fails on its input fails the same way next time
                // (replies of a pipeline carry no detail to tell more), and so does a command
                // on a key of the wrong type; only a full server's refusal passes.
                Some("ERR") => e
                    .detail()
                    .is_some_and(|d| d.contains("max number of clients")),
                Some("WRONGTYPE" | "NOPERM" | "NOSCRIPT") => false,
                // LOADING, BUSY, OOM, MISCONF, TRYAGAIN, READONLY, MASTERDOWN, NOREPLICAS, ...
                Some(_) => true,
                None => !matches!(e.retry_method(), redis::RetryMethod::NoRetry),
            },
            _ => false,
        }
    }
}

#[cfg(all(test, feature = "redis"))]
mod tests {
    use super::*;

    /// A reply `-<code> <detail>` of Redis (as redis-rs reports an `ERR` reply).
    fn server(code: &str, detail: &str) -> Error {
        Error::Redis(redis::RedisError::from((
            redis::ErrorKind::Server(redis::ServerErrorKind::ResponseError),
            "server error",
            format!("{code} {detail}"),
        )))
    }

    #[test]
    fn script_and_command_errors_are_not_transient() {
        assert!(server("ERR", "max number of clients reached").is_transient());
        for (code, detail) in [
            ("ERR", "workflow w: its state in Redis has layout v2"),
            ("ERR", "submit: a workflow with id w exists already"),
        ] {
            let e = server(code, detail);
            assert!(
                matches!(&e, Error::Redis(r) if r.code() == Some(code)),
                "{e:?}"
            );
            assert!(!e.is_transient(), "{e}");
        }
        assert!(Error::Timeout(std::time::Duration::from_secs(1)).is_transient());
        assert!(!Error::Broker("x".into()).is_transient());
    }
}
