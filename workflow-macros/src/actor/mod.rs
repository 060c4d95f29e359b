//! `#[actor]`: parse -> model -> check -> expand.
//!
//! - `parse.rs` reads the attribute's options and the function into a [`parse::Model`];
//! - `check.rs` validates the model, reporting every problem at once, into a checked actor;
//! - `expand.rs` writes the code for a checked actor, or the item plus the errors.

mod check;
mod expand;
mod parse;

use proc_macro2::TokenStream;

/// Expands `#[actor(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse::parse_fn(item.clone()) {
        Ok(func) => func,
        Err(error) => return expand::with_errors(item, None, error),
    };
    let (options, syntax_error) = match parse::parse_options(args) {
        Ok(options) => (options, None),
        Err(error) => (Vec::new(), Some(error)),
    };
    let model = parse::Model { options, func };
    match (check::check(&model), syntax_error) {
        (Ok(actor), None) => expand::expand(&actor),
        (Ok(_), Some(error)) => expand::with_errors(item, Some(&model.func), error),
        (Err(error), None) => expand::with_errors(item, Some(&model.func), error),
        (Err(error), Some(mut first)) => {
            first.combine(error);
            expand::with_errors(item, Some(&model.func), first)
        }
    }
}
