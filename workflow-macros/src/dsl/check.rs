//! Checks on the model that need no type information: literal `chain![]` and `group![]` must
//! not be empty, and a step is written as an actor call, not as its message constructor.
//!
//! Everything that needs types (is the step an actor, do the arguments fit, is the delay a
//! `Duration`) is left to rustc, through code spanned at the user's tokens by `expand.rs`.

use proc_macro2::Span;

use super::model::{Element, Literal};
use super::parse::pretty;

/// A model that passed the checks: every `chain![..]` and `group![..]` literal has elements.
/// Elements with errors are [`Element::Invalid`].
pub(crate) struct Checked(pub(crate) Element);

/// Checks `element`, reporting every problem; the result replaces the faulty elements with
/// [`Element::Invalid`] so that the rest can still be expanded.
pub(crate) fn check(element: Element) -> (Checked, Option<syn::Error>) {
    let mut errors = None;
    let element = walk(element, &mut errors);
    (Checked(element), errors)
}

fn push(errors: &mut Option<syn::Error>, error: syn::Error) {
    match errors {
        Some(errors) => errors.combine(error),
        None => *errors = Some(error),
    }
}

fn walk(element: Element, errors: &mut Option<syn::Error>) -> Element {
    match element {
        Element::Chain(literal) => match non_empty(
            literal,
            "chain",
            "a chain needs at least one element",
            errors,
        ) {
            Some(literal) => Element::Chain(literal),
            None => Element::Invalid,
        },
        Element::Group(literal) => match non_empty(
            literal,
            "group",
            "a group needs at least one element (a fan-out `group![for x in xs => ..]` may be \
             empty at run time)",
            errors,
        ) {
            Some(literal) => Element::Group(literal),
            None => Element::Invalid,
        },
        Element::FanOut(mut fan_out) => {
            fan_out.body = Box::new(walk(*fan_out.body, errors));
            Element::FanOut(fan_out)
        }
        Element::Delay(mut delay) => {
            delay.element = Box::new(walk(*delay.element, errors));
            Element::Delay(delay)
        }
        Element::Step(step) => {
            let segments = &step.path.segments;
            if segments.len() >= 2 && segments.last().is_some_and(|s| s.ident == "message") {
                let mut actor = step.path.clone();
                actor.segments.pop();
                let actor = pretty(&actor).trim_end_matches(':').to_owned();
                push(
                    errors,
                    syn::Error::new_spanned(
                        &step.path,
                        format!(
                            "write a step as a call of the actor, `{actor}(..)`: `workflow!` builds \
                             the message; to use a message built elsewhere, write it in braces: \
                             `{{ {actor}::message(..) }}`"
                        ),
                    ),
                );
                return Element::Invalid;
            }
            Element::Step(step)
        }
        e @ (Element::Escape(_) | Element::Invalid) => e,
    }
}

fn non_empty(
    mut literal: Literal,
    keyword: &str,
    why: &str,
    errors: &mut Option<syn::Error>,
) -> Option<Literal> {
    if literal.elements.is_empty() {
        let message = format!("empty `{keyword}![]`: {why}");
        push(
            errors,
            match literal.written.is_empty() {
                true => syn::Error::new(Span::call_site(), message),
                false => syn::Error::new_spanned(&literal.written, message),
            },
        );
        return None;
    }
    literal.elements = literal
        .elements
        .into_iter()
        .map(|e| walk(e, errors))
        .collect();
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
        let (model, parse_errors) = parse(entry, input);
        assert!(parse_errors.is_none());
        let (checked, errors) = check(model);
        let errors =
            errors.map_or_else(Vec::new, |e| e.into_iter().map(|e| e.to_string()).collect());
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
