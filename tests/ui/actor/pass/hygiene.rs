// The generated code uses absolute paths: it compiles even when the user's module shadows the
// prelude's names, and even a local module named `workflow`.
#![allow(dead_code, non_camel_case_types)]

type Result = ();
struct Ok;
struct Err;
struct Option;
struct Some;
struct None;
struct Box;
struct Vec;
struct String;
struct Default;
struct Iterator;
struct IntoIterator;
struct Send;
struct Actor;
struct ActorOptions;
struct TypedMessage;
struct Duration;
mod core {}
mod std {}
mod serde_json {}
mod inventory {}
mod workflow_runtime {}
mod workflow {}
mod __private {}
fn to_arg() {}
fn take_arg() {}
fn bind_args() {}

#[::workflow::actor]
async fn shadowed(
    args: u64,
    kwargs: ::std::string::String,
    __args: u8,
) -> ::core::result::Result<(), ::std::string::String> {
    let _ = (args, kwargs, __args);
    ::core::result::Result::Ok(())
}

#[::workflow::actor]
fn same_name_as_param(same_name_as_param: u32) {
    let _ = same_name_as_param;
}

#[::workflow::actor]
fn r#type(r#match: u8) {
    let _ = r#match;
}

// No prelude at all.
mod bare {
    #![no_implicit_prelude]

    #[::workflow::actor(queue = "bare", time_limit = "1s")]
    pub(crate) async fn no_prelude(x: u64) -> ::core::result::Result<(), ::std::string::String> {
        let _ = x;
        ::core::result::Result::Ok(())
    }

    #[::workflow::actor]
    pub(crate) fn no_prelude_blocking(x: ::std::vec::Vec<u8>) {
        let _ = x;
    }
}

fn main() {
    let _ = bare::no_prelude::message(1);
    let _ = bare::no_prelude_blocking::message(::std::vec![1]);
    let message = shadowed::message(1, "a".into(), 2).into_message().unwrap();
    assert_eq!(message.args.len(), 3);
    let _ = same_name_as_param::message(1);
    let message = r#type::message(1).into_message().unwrap();
    assert_eq!(message.actor_name, "type");
}
