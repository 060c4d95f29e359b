//! Checks: turns a [`Model`] into a [`Checked`] actor, reporting every problem at once.
//!
//! - `options.rs` checks the attribute's options: known names, each given once, with a value of
//!   the right kind;
//! - `signature.rs` checks the function: its qualifiers, generics, parameters and return type.
//!
//! Each error points at the narrowest token the user wrote: the option's name or value, the
//! `const` keyword, the generics, the borrowed type. Problems the macro cannot see (a type that
//! is not serializable) are left to the type checks that `expand.rs` emits.

mod options;
mod signature;

use syn::ext::IdentExt;
use syn::{ItemFn, Type};

pub(crate) use options::{Options, DEFAULT_QUEUE};
use signature::Param;

use super::parse::Model;
use crate::ctxt::Ctxt;

/// An actor that passed every check: what `expand.rs` needs and nothing unchecked.
pub(crate) struct Checked {
    /// The actor's name on the wire.
    pub(crate) name: String,
    /// Its queue.
    pub(crate) queue: String,
    /// Its options.
    pub(crate) options: Options,
    /// The function, unchanged, to emit as written.
    pub(crate) func: ItemFn,
    /// `async fn` (else a plain `fn`, run on the blocking pool).
    pub(crate) is_async: bool,
    /// The parameters, in order.
    pub(crate) params: Vec<Param>,
    /// The declared return type; `None` for a function without `->`.
    pub(crate) output: Option<Type>,
}

/// Checks the options and the function, reporting every problem to `cx`; returns the actor
/// built from the valid parts, to expand only if `cx` has no errors.
pub(crate) fn check(cx: &Ctxt, model: &Model) -> Checked {
    let (name, queue, options) = options::check_options(cx, &model.options);
    let func = model.func.clone();
    signature::check_signature(cx, &func);
    let params = signature::check_params(cx, &func);
    let output = signature::check_output(cx, &func);
    let name = name.unwrap_or_else(|| func.sig.ident.unraw().to_string());
    let queue = queue.unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
    let is_async = func.sig.asyncness.is_some();
    Checked {
        name,
        queue,
        options,
        func,
        is_async,
        params,
        output,
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::actor::parse::{parse_fn, parse_options};

    /// Parses and checks: the checked actor, or the messages of its errors.
    pub(super) fn run(args: TokenStream, item: TokenStream) -> Result<Checked, Vec<String>> {
        let options = parse_options(args).expect("options parse");
        let func = parse_fn(item).expect("fn parses");
        let cx = Ctxt::new();
        let checked = check(&cx, &Model { options, func });
        match cx.check() {
            Ok(()) => Ok(checked),
            Err(e) => Err(e.into_iter().map(|e| e.to_string()).collect()),
        }
    }

    /// The messages of the errors; panics if there are none.
    pub(super) fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        match run(args, item) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e,
        }
    }

    /// `async fn f() {}` checked with the options `args`; panics on errors.
    pub(super) fn options(args: TokenStream) -> Checked {
        match run(
            args,
            quote!(
                async fn f() {}
            ),
        ) {
            Ok(checked) => checked,
            Err(e) => panic!("unexpected errors: {e:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = options(quote!());
        assert_eq!(c.name, "f");
        assert_eq!(c.queue, "default");
        assert_eq!(c.options, Options::default());
        assert!(c.is_async);
        assert!(c.output.is_none());
    }

    #[test]
    fn raw_identifier_names() {
        let c = run(
            quote!(),
            quote!(
                fn r#type(r#match: u32) {}
            ),
        )
        .ok()
        .unwrap();
        assert_eq!(c.name, "type");
        assert_eq!(c.params[0].name, "match");
    }
}
