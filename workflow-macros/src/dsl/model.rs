//! The model of a workflow literal: what the user wrote, as a tree of elements.
//!
//! `parse/` builds it, `check.rs` validates it, `plan.rs` flattens its static parts and
//! `expand.rs` writes the code.

use proc_macro2::{Span, TokenStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Pat, Path, Token};

/// One element of a workflow literal.
pub(crate) enum Element {
    /// `path(args)`: one message of an actor.
    Step(Step),
    /// `chain![a, b, ...]`: the elements one after the other.
    Chain(Literal),
    /// `group![a, b, ...]`: the elements in parallel.
    Group(Literal),
    /// `group![for pat in iter => element]`: one member per item, known at run time.
    FanOut(FanOut),
    /// `delay!(duration, element)`: the element starts `duration` after its predecessor.
    Delay(Delay),
    /// `{ expr }`: any value that converts into a workflow.
    Escape(Escape),
    /// An element whose error has been reported; it expands to an empty workflow so that the
    /// rest of the literal still type-checks without a cascade of errors.
    Invalid,
}

/// `path(args)`.
pub(crate) struct Step {
    /// The actor, as written: `resize`, `jobs::resize`.
    pub(crate) path: Path,
    /// The span of the parentheses around the arguments.
    pub(crate) paren: Span,
    /// The arguments, as written.
    pub(crate) args: Punctuated<Expr, Token![,]>,
}

/// The elements of `chain![..]` or `group![..]`.
pub(crate) struct Literal {
    /// The tokens of the invocation, `chain![]`, for errors about the literal as a whole; empty
    /// for a standalone `chain![..]` (its errors point at the whole macro call).
    pub(crate) written: TokenStream,
    /// The elements, in order.
    pub(crate) elements: Vec<Element>,
}

/// `group![for pat in iter => body]`.
pub(crate) struct FanOut {
    /// The loop's pattern.
    pub(crate) pat: Pat,
    /// The `for` and `in` tokens, spanned at the user's.
    pub(crate) for_token: Token![for],
    /// The `in` token.
    pub(crate) in_token: Token![in],
    /// What to iterate over.
    pub(crate) iter: Expr,
    /// The element built for each item.
    pub(crate) body: Box<Element>,
}

/// `delay!(duration, element)`.
pub(crate) struct Delay {
    /// The span of the `delay` keyword (the macro call for a standalone `delay!`).
    pub(crate) keyword: Span,
    /// The expression that must be a `core::time::Duration`.
    pub(crate) duration: Expr,
    /// The delayed element.
    pub(crate) element: Box<Element>,
}

/// `{ expr }`.
pub(crate) struct Escape {
    /// The expression inside the braces.
    pub(crate) expr: Expr,
}

impl Element {
    /// A short description for messages and tests.
    #[cfg(test)]
    pub(crate) fn describe(&self) -> String {
        use quote::ToTokens;
        let list = |kw: &str, l: &Literal| {
            let inner: Vec<String> = l.elements.iter().map(Element::describe).collect();
            format!("{kw}[{}]", inner.join(", "))
        };
        match self {
            Element::Step(s) => {
                let path = s.path.to_token_stream().to_string().replace(' ', "");
                format!("{path}/{}", s.args.len())
            }
            Element::Chain(l) => list("chain", l),
            Element::Group(l) => list("group", l),
            Element::FanOut(f) => format!("group[for => {}]", f.body.describe()),
            Element::Delay(d) => format!("delay({})", d.element.describe()),
            Element::Escape(_) => "{..}".to_owned(),
            Element::Invalid => "!".to_owned(),
        }
    }
}
