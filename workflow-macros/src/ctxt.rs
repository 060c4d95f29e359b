//! The error accumulator that every phase of every macro reports to.
//!
//! Parsing and checking do not stop at the first problem: they report it to a [`Ctxt`] and
//! carry on, so that the user sees every mistake in one compile. The caller then asks
//! [`Ctxt::check`] whether anything was reported before it expands. serde_derive's
//! `internals/ctxt.rs` is the model.

use std::cell::RefCell;
use std::fmt::Display;
use std::thread;

use quote::ToTokens;

/// The errors reported so far during one macro invocation, in the order they were reported.
///
/// Reporting takes `&self`, so one context can be shared by all the functions (and closures)
/// of a phase. The context must be consumed by [`Ctxt::check`]: dropping it unchecked would
/// lose errors silently, so it is a bug in the macro and panics.
pub(crate) struct Ctxt {
    /// Every error reported, oldest first.
    errors: RefCell<Vec<syn::Error>>,
    /// Whether [`Ctxt::check`] has taken the errors.
    checked: bool,
}

impl Ctxt {
    /// A context with no errors yet.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Vec::new()),
            checked: false,
        }
    }

    /// Reports `message` at `tokens`: from the span of their first token to that of their last.
    pub(crate) fn error_spanned_by<T: ToTokens, M: Display>(&self, tokens: T, message: M) {
        self.syn_error(syn::Error::new_spanned(tokens, message));
    }

    /// Reports an error already built: one from a `syn` parser, or one at a bare `Span`.
    pub(crate) fn syn_error(&self, error: syn::Error) {
        self.errors.borrow_mut().push(error);
    }

    /// Consumes the context: `Ok` when nothing was reported, else every error folded into
    /// one with [`syn::Error::combine`], in the order they were reported.
    pub(crate) fn check(mut self) -> syn::Result<()> {
        self.checked = true;
        let errors = self.errors.take();
        match errors.into_iter().reduce(|mut all, next| {
            all.combine(next);
            all
        }) {
            Some(all) => Err(all),
            None => Ok(()),
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        // Not while unwinding: a second panic would abort instead of reporting the first.
        if !self.checked && !thread::panicking() {
            panic!("a macro dropped its error context without calling `Ctxt::check`");
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::Span;
    use quote::quote;

    use super::*;

    fn messages(result: syn::Result<()>) -> Vec<String> {
        match result {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn nothing_reported_is_ok() {
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    fn errors_come_out_in_the_order_they_were_reported() {
        let cx = Ctxt::new();
        cx.error_spanned_by(quote!(queue), "first");
        cx.syn_error(syn::Error::new(Span::call_site(), "second"));
        cx.error_spanned_by(quote!(a b c), format_args!("{}", "third"));
        assert_eq!(messages(cx.check()), ["first", "second", "third"]);
    }

    #[test]
    fn an_error_that_holds_several_keeps_them_all() {
        let mut two = syn::Error::new(Span::call_site(), "one");
        two.combine(syn::Error::new(Span::call_site(), "two"));
        let cx = Ctxt::new();
        cx.syn_error(two);
        cx.error_spanned_by(quote!(x), "three");
        assert_eq!(messages(cx.check()), ["one", "two", "three"]);
    }

    #[test]
    #[should_panic(expected = "without calling `Ctxt::check`")]
    fn dropping_unchecked_panics() {
        let cx = Ctxt::new();
        cx.error_spanned_by(quote!(x), "lost");
    }
}
