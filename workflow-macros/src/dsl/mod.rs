//! `workflow!`, `chain!`, `group!` and `delay!`: parse -> model -> check -> expand.
//!
//! - `parse/` reads the tokens into a [`model::Element`] tree, reporting every syntax error;
//! - `check.rs` rejects what is well-formed but wrong (a literal `chain![]`), into a checked tree;
//! - `plan.rs` flattens the parts known at compile time into static plan tables;
//! - `expand.rs` writes the code: static tables for those parts, the builder API for the rest.
//!
//! Parsing and checking report to one [`Ctxt`]. Its errors are emitted next to the expansion
//! of the whole literal, broken elements replaced by empty workflows, so that rustc still
//! type-checks the valid steps.

mod check;
mod expand;
mod model;
mod parse;
mod plan;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Which macro is expanded: the four take the same elements, at different roots.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Entry {
    /// `workflow!(element)`.
    Workflow,
    /// `chain![elements]`, the same as `workflow!(chain![elements])`.
    Chain,
    /// `group![elements]` or `group![for x in xs => element]`.
    Group,
    /// `delay!(duration, element)`.
    Delay,
}

/// Expands one of the four macros.
pub(crate) fn expand(entry: Entry, input: TokenStream) -> TokenStream {
    let cx = Ctxt::new();
    let model = parse::parse(&cx, entry, input);
    let checked = check::check(&cx, model);
    expand::expand(&checked, cx.check().err())
}
