//! Checks on the model that need no type information: literal `chain![]` and `group![]` must
//! not be empty, and a step is written as an actor call, not as its message constructor.
//!
//! Everything that needs types (is the step an actor, do the arguments fit, is the delay a
//! `Duration`) is left to rustc, through code spanned at the user's tokens by `expand.rs`.

use proc_macro2::Span;

use super::model::{Element, Literal};
use super::parse::pretty;
use crate::ctxt::Ctxt;

/// A model that passed the checks: every `chain![..]` and `group![..]` literal has elements.
/// Elements with errors are [`Element::Invalid`].
pub(crate) struct Checked(pub(crate) Element);

/// Checks `element`, reporting every problem to `cx`; the result replaces the faulty elements
/// with [`Element::Invalid`] so that the rest can still be expanded.
pub(crate) fn check(cx: &Ctxt, element: Element) -> Checked {
    Checked(walk(cx, element))
}

/// Checks one element and, recursively, the elements inside it.
fn walk(cx: &Ctxt, element: Element) -> Element {
    match element {
        Element::Chain(literal) => {
            match non_empty(cx, literal, "chain", "a chain needs at least one element") {
                Some(literal) => Element::Chain(literal),
                None => Element::Invalid,
            }
        }
        Element::Group(literal) => match non_empty(
            cx,
            literal,
            "group",
            "a group needs at least one element (a fan-out `group![for x in xs => ..]` may be \
             empty at run time)",
        ) {
            Some(literal) => Element::Group(literal),
            None => Element::Invalid,
        },
        Element::FanOut(mut fan_out) => {
            fan_out.body = Box::new(walk(cx, *fan_out.body));
            Element::FanOut(fan_out)
        }
        Element::Delay(mut delay) => {
            delay.element = Box::new(walk(cx, *delay.element));
            Element::Delay(delay)
        }
        Element::Step(step) => {
            let segments = &step.path.segments;
            if segments.len() >= 2 && segments.last().is_some_and(|s| s.ident == "message") {
                let mut actor = step.path.clone();
                actor.segments.pop();
                let actor = pretty(&actor).trim_end_matches(':').to_owned();
                cx.error_spanned_by(
                    &step.path,
                    format_args!(
                        "write a step as a call of the actor, `{actor}(..)`: `workflow!` builds \
                         the message; to use a message built elsewhere, write it in braces: \
                         `{{ {actor}::message(..) }}`"
                    ),
                );
                return Element::Invalid;
            }
            Element::Step(step)
        }
        e @ (Element::Escape(_) | Element::Invalid) => e,
    }
}

/// The literal with its elements checked, or `None` after reporting that it is empty.
fn non_empty(cx: &Ctxt, mut literal: Literal, keyword: &str, why: &str) -> Option<Literal> {
    if literal.elements.is_empty() {
        let message = format!("empty `{keyword}![]`: {why}");
        match literal.written.is_empty() {
            true => cx.syn_error(syn::Error::new(Span::call_site(), message)),
            false => cx.error_spanned_by(&literal.written, message),
        }
        return None;
    }
    literal.elements = literal.elements.into_iter().map(|e| walk(cx, e)).collect();
    Some(literal)
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::*;
    use crate::dsl::parse::parse;
    use crate::dsl::Entry;

    fn run(entry: Entry, input: TokenStream) -> (String, Vec<String>) {
        let cx = Ctxt::new();
        let model = parse(&cx, entry, input);
        cx.check().expect("the input parses");
        let cx = Ctxt::new();
        let checked = check(&cx, model);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (checked.0.describe(), errors)
    }

    #[test]
    fn non_empty_literals_pass() {
        let (shape, errors) = run(
            Entry::Workflow,
            quote!(chain![a(), group![b(), c()], group![for x in xs => d(x)]]),
        );
        assert!(errors.is_empty());
        assert_eq!(shape, "chain[a/0, group[b/0, c/0], group[for => d/1]]");
    }

    #[test]
    fn empty_literals_all_at_once() {
        let (shape, errors) = run(
            Entry::Workflow,
            quote!(chain![
                a(),
                chain![],
                group![],
                delay!(d, chain![]),
                group![for x in xs => group![]]
            ]),
        );
        assert_eq!(shape, "chain[a/0, !, !, delay(!), group[for => !]]");
        assert_eq!(
            errors,
            [
                "empty `chain![]`: a chain needs at least one element",
                "empty `group![]`: a group needs at least one element (a fan-out `group![for x in xs => ..]` \
                 may be empty at run time)",
                "empty `chain![]`: a chain needs at least one element",
                "empty `group![]`: a group needs at least one element (a fan-out `group![for x in xs => ..]` \
                 may be empty at run time)",
            ]
        );
    }

    #[test]
    fn standalone_empty() {
        assert_eq!(
            run(Entry::Chain, quote!()).1,
            ["empty `chain![]`: a chain needs at least one element"]
        );
        assert_eq!(run(Entry::Group, quote!()).1.len(), 1);
    }

    #[test]
    fn message_constructor_as_a_step() {
        assert_eq!(
            run(Entry::Workflow, quote!(jobs::resize::message(1, 2))).1,
            ["write a step as a call of the actor, `jobs::resize(..)`: `workflow!` builds the message; \
              to use a message built elsewhere, write it in braces: `{ jobs::resize::message(..) }`"]
        );
    }
}
