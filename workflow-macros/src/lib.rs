//! Procedural macros of the [`workflow`](https://docs.rs/workflow) crate.
//!
//! Use them through the facade (`use workflow::prelude::*;`); the code they generate names only
//! `::workflow::...`, so this crate is not meant to be a direct dependency.
//!
//! The examples below are doctests against the facade; every compile error has a snapshot test
//! in the facade's `tests/ui/`.

#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub, rust_2018_idioms)]

mod actor;
mod ctxt;
mod dsl;
mod duration;

use proc_macro::TokenStream;

/// Makes a function an actor: a task that workers run for each message sent to it.
///
/// ```
/// use workflow::prelude::*;
///
/// #[actor(queue = "images", max_retries = 5, min_backoff = "1s", time_limit = "30s")]
/// async fn resize(image_id: u64, width: u32) -> Result<(), String> {
///     // ...
///     Ok(())
/// }
///
/// # async fn send(broker: &MemoryBroker) -> workflow::Result<()> {
/// // A message, type-checked against the signature: `resize::message(42, "640")` does not compile.
/// resize::message(42, 640).send(broker).await?;
/// # Ok(())
/// # }
/// ```
///
/// The function stays an ordinary function (`resize(42, 640).await` calls it directly). A worker
/// runs it for every message to the actor: it finds every actor linked into the binary by itself.
///
/// # The function
///
/// - `async fn` runs on the worker's tokio runtime; its future must be `Send + 'static`. A plain
///   `fn` runs on tokio's blocking pool.
/// - Parameters are plain names (`x: T`, `mut x: T`) of owned types that serde can serialize and
///   deserialize (`String`, not `&str`). Arguments travel as a JSON array, in order; producers
///   that send keyword arguments (Python) use the parameter names.
/// - It returns nothing, or `Result<T, E>` with `T: Serialize` and `E: Display`: an `Err` (or a
///   panic) is a failed attempt, retried with backoff.
/// - Any visibility; the generated items get the same one. It may be in a module or a function
///   body. `#[cfg(..)]` on the function applies to everything generated.
///
/// # Options
///
/// | option        | value                          | default                     |
/// |---------------|--------------------------------|-----------------------------|
/// | `name`        | the actor's name on the wire   | the function's name         |
/// | `queue`       | `[a-zA-Z_][a-zA-Z0-9._-]*`     | `"default"`                 |
/// | `max_retries` | an integer                     | the worker's (20)           |
/// | `min_backoff` | a duration                     | the worker's (15 s)         |
/// | `max_backoff` | a duration                     | the worker's (7 days)       |
/// | `time_limit`  | a duration, not zero           | the worker's (10 minutes)   |
/// | `max_age`     | a duration, not zero           | no limit                    |
///
/// A duration is a string of a number and a unit `ms`, `s`, `m`, `h` or `d`, or several of them
/// from the largest unit down: `"500ms"`, `"30s"`, `"2m"`, `"1h30m"`, `"1d"`. It is checked and
/// converted while compiling.
///
/// # What this expands to
///
/// For `#[actor(queue = "images")] pub async fn resize(image_id: u64, width: u32) -> R`, in essence:
///
/// ```ignore
/// pub async fn resize(image_id: u64, width: u32) -> R { /* unchanged */ }
///
/// /// The actor `resize` ...
/// pub struct resize { _private: () }     // braced: a type only, beside the function
///
/// impl ::workflow::__private::Actor for resize {
///     const NAME: &'static str = "resize";
///     const QUEUE: &'static str = "images";
///     const OPTIONS: ::workflow::__private::ActorOptions = /* the options, durations in ms */;
/// }
///
/// impl resize {
///     /// A message for the actor `resize` ...
///     pub fn message(image_id: u64, width: u32) -> ::workflow::__private::TypedMessage<resize> {
///         // Type checks, spanned at your tokens: "`T` cannot be a parameter of an actor".
///         ::workflow::__private::assert_arg::<u64>();
///         ::workflow::__private::assert_arg::<u32>();
///         ::workflow::__private::TypedMessage::from_args([
///             ::workflow::__private::to_arg::<u64>(&image_id),
///             ::workflow::__private::to_arg::<u32>(&width),
///         ])
///     }
/// }
///
/// const _: () = {
///     // Decodes `args`/`kwargs` of a message (`bind_args`, `take_arg`), calls `resize(..)` and
///     // converts its output with `ActorReturn`; an `async fn` runs with `run_async`, a plain
///     // `fn` with `run_blocking`. Also checks the return type: `assert_return::<R>()`.
///     const HANDLER: ::workflow::__private::Handler = |args, kwargs| { /* ... */ };
///     // Registration: found by `Registry::linked()`, and so by every worker.
///     ::workflow::__private::inventory::submit! {
///         ::workflow::__private::ActorEntry {
///             name: "resize", queue: "images", options, handler: HANDLER,
///             location: "my_crate::media (src/media.rs:12)",
///         }
///     }
/// };
/// ```
///
/// The type `resize` is braced, so it lives only in the type namespace, beside the function:
/// `resize(..)` calls the function and `resize::message(..)` builds a message. If the macro
/// reports an error, it still emits the function and a stub of `resize::message`, so the rest
/// of the crate does not add a cascade of errors.
///
/// # Compile errors
///
/// Mistakes are compile errors that point at the token at fault, all reported at once: generics,
/// `self`, `const`/`unsafe`/`extern` functions, borrowed parameters, patterns instead of names,
/// parameter or return types that are not serializable, unknown or duplicate options, invalid
/// queue names and durations. For example, a borrowed parameter:
///
/// ```compile_fail
/// use workflow::prelude::*;
///
/// #[actor]
/// async fn greet(name: &str) {}
/// //                   ^^^^ actor parameters must be owned (use `String` instead of `&str`)
/// ```
///
/// Each error has a compile-fail test with its full message in `tests/ui/actor/`.
#[proc_macro_attribute]
pub fn actor(args: TokenStream, item: TokenStream) -> TokenStream {
    actor::expand(args.into(), item.into()).into()
}

/// Builds a workflow from a literal: actor steps in chains and groups, nested to any depth, with
/// delays, fan-outs over run-time data and embedded workflow values.
///
/// ```
/// use std::time::Duration;
/// use workflow::prelude::*;
///
/// #[actor] async fn task1(a: String, b: String, c: String) {}
/// #[actor] async fn task2() {}
/// // ... task3 to task8 alike, and resize(id: u64, width: u32), scan_bucket(bucket: String),
/// // notify(bucket: String)
/// # #[actor] async fn task3() {}
/// # #[actor] async fn task4() {}
/// # #[actor] async fn task5() {}
/// # #[actor] async fn task6() {}
/// # #[actor] async fn task7() {}
/// # #[actor] async fn task8() {}
/// # #[actor] async fn resize(id: u64, width: u32) {}
/// # #[actor] async fn scan_bucket(bucket: String) {}
/// # #[actor] async fn notify(bucket: String) {}
///
/// # async fn run(broker: &MemoryBroker, ids: Vec<u64>) -> workflow::Result<()> {
/// let wf = workflow!(chain![
///     task1("arguments".into(), "go".into(), "here".into()),
///     group![
///         chain![task2(), task5()],
///         task3(),
///         chain![task4(), group![task6(), task7()]],
///     ],
///     task8(),
/// ]);
/// wf.run(broker).await?.wait().await?;
///
/// // A fan-out over run-time data, a delay, and a literal embedded in another.
/// let resize_all = workflow!(group![for id in ids => resize(id, 640)]);
/// let wf = workflow!(chain![
///     scan_bucket("photos".into()),
///     { resize_all },
///     delay!(Duration::from_secs(2), notify("photos".into())),
/// ]);
/// # Ok(())
/// # }
/// ```
///
/// The value is a [`Workflow`](https://docs.rs/workflow/latest/workflow/struct.Workflow.html):
/// `.on_success(..)`, `.on_failure(..)`, `.retention(..)`, `.run(&broker)`.
///
/// # Syntax
///
/// `workflow!(element)` takes one element; an element is one of:
///
/// | element                          | meaning                                                        |
/// |----------------------------------|----------------------------------------------------------------|
/// | `actor(args..)`, `path::actor(args..)` | one message of an `#[actor]` function, its arguments type-checked against the function's parameters |
/// | `chain![e1, e2, ..]`             | the elements one after the other; at least one                  |
/// | `group![e1, e2, ..]`             | the elements in parallel; done when all are; at least one       |
/// | `group![for pat in iter => e]`   | one member `e` per item of `iter` (any `IntoIterator`), built at run time; may be empty (it then completes at once) |
/// | `delay!(duration, e)`            | `e` starts `duration` (a `core::time::Duration`) after its predecessor finished (after submission for the first element) |
/// | `{ expr }`                       | any expression of a type that converts into a `Workflow`: another `workflow!`, a message built with `actor::message(..)` (and e.g. `.with_max_retries(3)`), a `Chain` or `Group` built at run time |
///
/// Lists take a trailing comma; `[..]`, `(..)` and `{..}` are equivalent after a keyword.
/// Arguments and durations are ordinary Rust expressions, evaluated in the order they are written
/// (`.await` and `?` work in them), once per item in a fan-out.
///
/// # What this expands to
///
/// The part of a literal known at compile time (every chain and group without a fan-out or a
/// `{ expr }` inside) is flattened by the macro into a static table of task nodes, joins, start
/// sets and delay slots, numbered as the runtime's builder numbers them; at run time only the
/// messages and durations are filled in. For `chain![a(1), delay!(d, group![b(), c()])]`:
///
/// ```ignore
/// {
///     let plan: &'static ::workflow::__private::StaticPlan = {
///         static PLAN: StaticPlan = StaticPlan {
///             tasks: &[
///                 StaticTask { next: Next::Start(0), delays: &[] },   // a: then start set 0
///                 StaticTask { next: Next::Join(0), delays: &[0] },   // b: delay slot 0, join 0
///                 StaticTask { next: Next::Join(0), delays: &[0] },   // c
///             ],
///             joins: &[(2, Next::End)],                               // the group's barrier
///             starts: &[&[1, 2]],                                     // b and c start together
///             entry: &[0],
///         };
///         &PLAN
///     };
///     let step0 = { let _ = <a as Actor>::NAME; ::workflow::__private::step(a::message(1)) };
///     let delay0: ::core::time::Duration = d;
///     let step1 = { let _ = <b as Actor>::NAME; ::workflow::__private::step(b::message()) };
///     let step2 = { let _ = <c as Actor>::NAME; ::workflow::__private::step(c::message()) };
///     ::workflow::__private::Workflow::from_static(plan, [step0, step1, step2].into(), [delay0].into())
/// }
/// ```
///
/// Other parts use the builder API: `Workflow::chain([..])`, `Workflow::group([..])`,
/// `Workflow::delay(d, ..)`, a `for` loop adding members to a `Group` for a fan-out, and
/// `Into::<Workflow>::into(expr)` for `{ expr }` (their static sub-parts are tables again). A
/// lone step is `{ let _ = <x as Actor>::NAME; step(x::message(..)) }` (the first statement checks,
/// at your path, that `x` is an actor). The generated code names only
/// `::workflow::__private::..` and `::core::..`.
///
/// # Errors
///
/// Reported while compiling, at the token at fault, all at once: a wrong number or type of
/// arguments (with the actor's signature), a step that is not an actor ("`x` is not an actor"),
/// an unknown name, an empty literal `chain![]` or `group![]`, an unknown keyword, malformed
/// syntax, a delay that is not a `Duration`. For example:
///
/// ```compile_fail
/// # use workflow::prelude::*;
/// # #[actor] async fn task1() {}
/// # #[actor] async fn task2() {}
/// # #[actor] async fn task3() {}
/// let wf = workflow!(chain![task1(), parallel![task2(), task3()]]);
/// //                                 ^^^^^^^^ unknown keyword `parallel`; expected chain!, group!,
/// //                                          delay!, an actor call or `{ expr }`
/// ```
///
/// Each has a compile-fail test with its full message in `tests/ui/dsl/`.
#[proc_macro]
pub fn workflow(input: TokenStream) -> TokenStream {
    dsl::expand(dsl::Entry::Workflow, input.into()).into()
}

/// A chain: its elements run one after the other. `chain![e1, e2]` is
/// `workflow!(chain![e1, e2])`; see [`workflow!`](macro@workflow) for the elements.
///
/// ```
/// use workflow::prelude::*;
/// # #[actor] async fn fetch(url: String) {}
/// # #[actor] async fn resize(id: u64, size: u32) {}
/// # #[actor] async fn notify(id: u64) {}
/// # let (url, id) = (String::from("https://example.com/a.png"), 7);
///
/// let wf = chain![fetch(url.clone()), group![for size in [64, 640] => resize(id, size)], notify(id)];
/// ```
///
/// At least one element. Inside `workflow!` (and inside `chain!`, `group!`, `delay!`) it is part
/// of the literal; outside, it is a `Workflow` value on its own.
///
/// # What this expands to
///
/// Exactly what `workflow!(chain![..])` expands to: without a fan-out or `{ expr }` inside, a
/// block with a static plan table and `Workflow::from_static(..)`; otherwise
/// `::workflow::__private::Workflow::chain([..])` of the elements' expansions.
#[proc_macro]
pub fn chain(input: TokenStream) -> TokenStream {
    dsl::expand(dsl::Entry::Chain, input.into()).into()
}

/// A group: its elements run in parallel, and the group is done when all of them are.
/// `group![e1, e2]` is `workflow!(group![e1, e2])`; see [`workflow!`](macro@workflow).
///
/// ```
/// use workflow::prelude::*;
/// # #[actor] async fn resize(id: u64, size: u32) {}
/// # let (id, ids) = (7, vec![1, 2, 3]);
///
/// let thumbnails = group![resize(id, 64), resize(id, 640)];
/// let all = group![for id in ids => resize(id, 640)];   // one member per item, run time
/// ```
///
/// A literal group has at least one element; a fan-out `group![for pat in iter => element]` is
/// the only content of its group and may be empty at run time (the group then completes at
/// once).
///
/// # What this expands to
///
/// A literal group expands like `workflow!(group![..])` (a static plan table when nothing inside
/// is dynamic, else `Workflow::group([..])`). A fan-out is a loop:
///
/// ```ignore
/// {
///     let mut members = ::workflow::__private::Group::new();
///     let items = ids;                       // your expression, evaluated once
///     for id in items {                      // your pattern
///         members = ::workflow::__private::Group::with(members, /* the element, for this `id` */);
///     }
///     ::core::convert::Into::<::workflow::__private::Workflow>::into(members)
/// }
/// ```
#[proc_macro]
pub fn group(input: TokenStream) -> TokenStream {
    dsl::expand(dsl::Entry::Group, input.into()).into()
}

/// A delayed element: `delay!(duration, element)` starts `element` `duration` after its
/// predecessor finished (after submission when it comes first). `duration` must be a
/// `core::time::Duration`; see [`workflow!`](macro@workflow) for the elements.
///
/// ```
/// use std::time::Duration;
/// use workflow::prelude::*;
/// # #[actor] async fn upload(id: u64) {}
/// # #[actor] async fn notify(id: u64) {}
/// # let id = 7;
///
/// let wf = chain![upload(id), delay!(Duration::from_secs(60), notify(id))];
/// ```
///
/// A delay before a chain delays its first element; before a group, every member.
///
/// # What this expands to
///
/// Around a chain or group without dynamic parts, a static plan table whose tasks list the delay
/// slot (see [`workflow!`](macro@workflow)). Otherwise:
///
/// ```ignore
/// {
///     let delay: ::core::time::Duration = Duration::from_secs(60);   // "expected `Duration`" here
///     ::workflow::__private::Workflow::delay(delay, /* the element */)
/// }
/// ```
#[proc_macro]
pub fn delay(input: TokenStream) -> TokenStream {
    dsl::expand(dsl::Entry::Delay, input.into()).into()
}
