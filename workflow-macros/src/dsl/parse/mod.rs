//! Parsing: the tokens of `workflow!`, `chain!`, `group!` and `delay!` into the [`model`].
//!
//! The structure of a literal (elements separated by commas, keywords followed by a delimited
//! group, braces, `for .. in .. => ..`) is read at the level of token trees, so that one
//! malformed element does not hide the errors of the others: each element is parsed on its own
//! and a broken one is reported and replaced by [`Element::Invalid`]. The pieces of Rust inside
//! (paths, argument expressions, durations, patterns) are parsed with `syn`, each in its own
//! buffer whose end is the user's next token, so that "unexpected end of input" points there.
//!
//! - `element.rs` reads one element: `{ expr }`, a step `path(args)` or a keyword macro;
//! - `fan_out.rs` reads the content of `group![for pat in iter => element]`;
//! - `delay.rs` reads the content of `delay!(duration, element)`;
//! - `tokens.rs` holds the helpers on token trees: splitting at commas, parsing a slice with
//!   `syn`, printing a path.
//!
//! [`model`]: super::model

mod delay;
mod element;
mod fan_out;
mod tokens;

use proc_macro2::{Span, TokenStream, TokenTree};

use tokens::{is_ident, split};
pub(crate) use tokens::{last_span, pretty};

use super::model::{Element, Literal};
use super::Entry;
use crate::ctxt::Ctxt;

/// What an element may be, for error messages.
pub(crate) const ELEMENTS: &str = "chain!, group!, delay!, an actor call or `{ expr }`";

/// Parses the input of one of the four macros into an element, reporting every syntax error
/// to `cx`.
///
/// The element is complete even when there are errors: the broken parts are
/// [`Element::Invalid`].
pub(crate) fn parse(cx: &Ctxt, entry: Entry, input: TokenStream) -> Element {
    let reader = Reader { cx };
    let trees: Vec<TokenTree> = input.into_iter().collect();
    let end = Span::call_site();
    let written = TokenStream::new();
    match entry {
        Entry::Workflow => reader.single(&trees, end, "`workflow!` takes one element"),
        Entry::Chain => Element::Chain(reader.literal(&trees, end, written)),
        Entry::Group => reader.group(&trees, end, written),
        Entry::Delay => reader.delay(&trees, end, end, written),
    }
}

/// Reads token trees into elements; a broken element is reported to `cx` and read as
/// [`Element::Invalid`].
struct Reader<'a> {
    /// Where the errors go.
    cx: &'a Ctxt,
}

impl Reader<'_> {
    /// The element of a list chunk, or [`Element::Invalid`] after reporting its error.
    fn element(&self, chunk: &[TokenTree], end: Span) -> Element {
        match self.try_element(chunk, end) {
            Ok(element) => element,
            Err(error) => {
                self.cx.syn_error(error);
                Element::Invalid
            }
        }
    }

    /// Exactly one element (a trailing comma is allowed): the content of `workflow!(..)`, of a
    /// fan-out's body and of a delay's element. `what` starts the error when there are several.
    fn single(&self, trees: &[TokenTree], end: Span, what: &str) -> Element {
        let chunks = split(trees);
        match chunks.as_slice() {
            [] => {
                self.cx.syn_error(syn::Error::new(
                    end,
                    format!("expected an element: {ELEMENTS}"),
                ));
                Element::Invalid
            }
            [(chunk, _)] => self.element(chunk, end),
            [(chunk, comma), ..] => {
                let element = self.element(chunk, comma.map_or(end, |c| c.span()));
                let rest = TokenStream::from_iter(trees[chunk.len() + 1..].iter().cloned());
                self.cx.syn_error(syn::Error::new_spanned(
                    rest,
                    format!("{what}; wrap several elements in chain![..] or group![..]"),
                ));
                element
            }
        }
    }

    /// The elements of `chain![..]` or `group![..]`, separated by commas.
    fn literal(&self, trees: &[TokenTree], end: Span, written: TokenStream) -> Literal {
        let mut elements = Vec::new();
        for (chunk, comma) in split(trees) {
            let chunk_end = comma.map_or(end, |c| c.span());
            if chunk.is_empty() {
                self.cx
                    .syn_error(syn::Error::new(chunk_end, "expected an element before `,`"));
                elements.push(Element::Invalid);
                continue;
            }
            if is_ident(&chunk[0], "for") {
                self.cx.syn_error(syn::Error::new(
                    chunk[0].span(),
                    "a fan-out `for x in xs => element` is the only content of its \
                     `group![..]`; write `group![for x in xs => element]`",
                ));
                elements.push(Element::Invalid);
                continue;
            }
            elements.push(self.element(chunk, chunk_end));
        }
        Literal { written, elements }
    }

    /// The content of `group![..]`: a literal list or a fan-out.
    fn group(&self, trees: &[TokenTree], end: Span, written: TokenStream) -> Element {
        match trees.first() {
            Some(first) if is_ident(first, "for") => match self.fan_out(trees, end) {
                Ok(fan_out) => Element::FanOut(fan_out),
                Err(error) => {
                    self.cx.syn_error(error);
                    Element::Invalid
                }
            },
            _ => Element::Group(self.literal(trees, end, written)),
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::*;

    fn parsed(entry: Entry, input: TokenStream) -> (String, Vec<String>) {
        let cx = Ctxt::new();
        let element = parse(&cx, entry, input);
        let errors = match cx.check() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (element.describe(), errors)
    }

    fn ok(input: TokenStream) -> String {
        let (shape, errors) = parsed(Entry::Workflow, input);
        assert!(errors.is_empty(), "{errors:?}");
        shape
    }

    fn errors(input: TokenStream) -> Vec<String> {
        parsed(Entry::Workflow, input).1
    }

    #[test]
    fn seed_literal() {
        let shape = ok(quote!(chain![
            task1("arguments".into(), "go".into(), "here".into()),
            group![
                chain![task2(), task5()],
                task3(),
                chain![task4(), group![task6(), task7()]],
            ],
            task8(),
        ]));
        assert_eq!(
            shape,
            "chain[task1/3, group[chain[task2/0, task5/0], task3/0, chain[task4/0, group[task6/0, task7/0]]], task8/0]"
        );
    }

    #[test]
    fn every_construct() {
        assert_eq!(ok(quote!(jobs::resize(id, 640))), "jobs::resize/2");
        assert_eq!(ok(quote!(::jobs::resize(id, 640,))), "::jobs::resize/2");
        assert_eq!(
            ok(quote!(delay!(Duration::from_secs(2), a()))),
            "delay(a/0)"
        );
        assert_eq!(
            ok(quote!(delay!(d, chain![a(), b()],))),
            "delay(chain[a/0, b/0])"
        );
        assert_eq!(ok(quote!({ other.clone() })), "{..}");
        assert_eq!(
            ok(quote!(group![for id in ids => resize(id, 640)])),
            "group[for => resize/2]"
        );
        assert_eq!(
            ok(quote!(
                group![for (i, x) in xs.iter().enumerate() => chain![a(i), b(*x)],]
            )),
            "group[for => chain[a/1, b/1]]"
        );
        assert_eq!(ok(quote!(group!(a(), { w }))), "group[a/0, {..}]");
        assert_eq!(ok(quote!(workflow::chain! {a()})), "chain[a/0]");
        // Empty literals parse; the checks reject them.
        assert_eq!(ok(quote!(chain![])), "chain[]");
    }

    #[test]
    fn turbofish_commas_inside_a_duration_and_an_iterator() {
        assert_eq!(ok(quote!(delay!(f::<A, B>(), a()))), "delay(a/0)");
        assert_eq!(
            ok(quote!(group![for x in f::<A, B>(y) => a(x)])),
            "group[for => a/1]"
        );
    }

    #[test]
    fn standalone_macros() {
        assert_eq!(parsed(Entry::Chain, quote!(a(), b(),)).0, "chain[a/0, b/0]");
        assert_eq!(parsed(Entry::Group, quote!(a(), b())).0, "group[a/0, b/0]");
        assert_eq!(
            parsed(Entry::Group, quote!(for x in xs => a(x))).0,
            "group[for => a/1]"
        );
        assert_eq!(parsed(Entry::Delay, quote!(d, a())).0, "delay(a/0)");
    }

    #[test]
    fn unknown_keyword() {
        assert_eq!(
            errors(quote!(parallel![a(), b()])),
            ["unknown keyword `parallel`; expected chain!, group!, delay!, an actor call or `{ expr }`"]
        );
    }

    #[test]
    fn errors_come_all_at_once() {
        let (shape, errors) = parsed(
            Entry::Workflow,
            quote!(chain![
                parallel![a()],
                5,
                b,
                group![for x in xs c(x)],
                delay!(d),
                c().with_max_retries(1)
            ]),
        );
        assert_eq!(shape, "chain[!, !, !, !, delay(!), !]");
        assert_eq!(
            errors,
            [
                "unknown keyword `parallel`; expected chain!, group!, delay!, an actor call or `{ expr }`",
                "expected chain!, group!, delay!, an actor call or `{ expr }`",
                "expected `(` and the arguments after `b`: a step is an actor call, `b(..)`",
                "expected `=>` after the iterator of a fan-out: `group![for x in xs => element]`",
                "expected an element after the duration: `delay!(duration, element)`",
                "a step is an actor call; to call methods on its message, write the message in braces: \
                 `{ c::message(..).with_max_retries(3) }`",
            ]
        );
    }

    #[test]
    fn malformed() {
        let e = errors;
        assert_eq!(
            e(quote!()),
            ["expected an element: chain!, group!, delay!, an actor call or `{ expr }`"]
        );
        assert_eq!(
            e(quote!(a(), b())),
            ["`workflow!` takes one element; wrap several elements in chain![..] or group![..]"]
        );
        assert_eq!(
            e(quote!(chain![a(),, b()])),
            ["expected an element before `,`"]
        );
        assert_eq!(
            e(quote!(chain![a() b()])),
            ["expected `,` between elements"]
        );
        assert_eq!(
            e(quote!(chain![a(), for x in xs => b(x)])),
            ["a fan-out `for x in xs => element` is the only content of its `group![..]`; write \
              `group![for x in xs => element]`"]
        );
        assert_eq!(
            e(quote!(group![for x in xs])),
            ["expected `=>` and an element after the iterator of a fan-out: `group![for x in xs => element]`"]
        );
        assert_eq!(
            e(quote!(group![for x xs => a()])),
            ["expected `in` in the fan-out `group![for x in xs => element]`"]
        );
        assert_eq!(
            e(quote!(group![for x in xs => a(x), b(x)])),
            ["a fan-out builds one element per item; wrap several elements in chain![..] or group![..]"]
        );
        assert_eq!(
            e(quote!(delay!())),
            ["expected a duration and an element: `delay!(duration, element)`"]
        );
        assert_eq!(
            e(quote!(delay!(d,))),
            ["expected an element after the duration: `delay!(duration, element)`"]
        );
        assert_eq!(
            e(quote!(delay!(d a()))),
            ["expected `,` between the duration and the element: `delay!(duration, element)`"]
        );
        assert_eq!(e(quote!({})).len(), 1);
        assert_eq!(
            e(quote!({
                a;
                b
            }))
            .len(),
            1
        );
        assert_eq!(e(quote!(a(1 2))), ["expected `,`"]);
        assert_eq!(e(quote!(chain!)), ["expected `[` after `chain!`"]);
    }
}
