//! `#[actor]`: parse -> model -> check -> expand.
//!
//! - `parse.rs` reads the attribute's options and the function into a [`parse::Model`];
//! - `check/` validates the model into a checked actor, reporting every problem at once:
//!   `options.rs` the attribute's options, `signature.rs` the function;
//! - `expand.rs` writes the code for a checked actor, or the item plus the errors.
//!
//! Parsing and checking report to one [`Ctxt`]; the actor is expanded only when it holds no
//! errors.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `#[actor(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let model = parse::parse(&cx, args, item.clone());
    let actor = model.as_ref().map(|model| check::check(&cx, model));
    let func = model.as_ref().map(|model| &model.func);
    match (cx.check(), actor) {
        (Ok(()), Some(actor)) => expand::expand(&actor),
        (Err(errors), _) => expand::with_errors(item, func, errors),
        // Unreached: `parse` reports why it found no function.
        (Ok(()), None) => item,
    }
}
