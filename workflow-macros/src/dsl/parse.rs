//! Parsing: the tokens of `workflow!`, `chain!`, `group!` and `delay!` into the [`model`].
//!
//! The structure of a literal (elements separated by commas, keywords followed by a delimited
//! group, braces, `for .. in .. => ..`) is read at the level of token trees, so that one
//! malformed element does not hide the errors of the others: each element is parsed on its own
//! and a broken one is reported and replaced by [`Element::Invalid`]. The pieces of Rust inside
//! (paths, argument expressions, durations, patterns) are parsed with `syn`, each in its own
//! buffer whose end is the user's next token, so that "unexpected end of input" points there.
//!
//! [`model`]: super::model

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{ParseStream, Parser};
use syn::punctuated::Punctuated;
use syn::{Expr, Pat, Path, Token};

use super::model::{Delay, Element, Escape, FanOut, Literal, Step};
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

    /// `for PAT in EXPR => ELEM`.
    fn fan_out(&self, trees: &[TokenTree], end: Span) -> syn::Result<FanOut> {
        const FORM: &str = "group![for x in xs => element]";
        let for_token = Token![for](trees[0].span());
        let Some(in_at) = trees.iter().position(|t| is_ident(t, "in")) else {
            return Err(syn::Error::new(
                end,
                format!("expected `in` in the fan-out `{FORM}`"),
            ));
        };
        let in_token = Token![in](trees[in_at].span());
        if in_at == 1 {
            return Err(syn::Error::new(
                in_token.span,
                "expected a pattern between `for` and `in`",
            ));
        }
        let pat = parse_tokens(&trees[1..in_at], in_token.span, |input| {
            let pat = Pat::parse_multi_with_leading_vert(input)?;
            if !input.is_empty() {
                return Err(input.error("expected `in` after the pattern of a fan-out"));
            }
            Ok(pat)
        })?;
        let arrow_at = (in_at + 1..trees.len()).find(|&i| is_fat_arrow(trees, i));
        let iter_end = arrow_at.map_or(end, |i| trees[i].span());
        let iter = parse_tokens(
            &trees[in_at + 1..arrow_at.unwrap_or(trees.len())],
            iter_end,
            |input| {
                if input.is_empty() {
                    return Err(input.error("expected the expression to iterate over after `in`"));
                }
                let iter = input.parse::<Expr>()?;
                if !input.is_empty() {
                    return Err(input.error(format!(
                        "expected `=>` after the iterator of a fan-out: `{FORM}`"
                    )));
                }
                Ok(iter)
            },
        )?;
        let Some(arrow_at) = arrow_at else {
            return Err(syn::Error::new(
                end,
                format!("expected `=>` and an element after the iterator of a fan-out: `{FORM}`"),
            ));
        };
        let body = self.single(
            &trees[arrow_at + 2..],
            end,
            "a fan-out builds one element per item",
        );
        Ok(FanOut {
            pat,
            for_token,
            in_token,
            iter,
            body: Box::new(body),
        })
    }

    /// The content of `delay!(..)`: a duration, a comma and one element.
    fn delay(
        &self,
        trees: &[TokenTree],
        end: Span,
        keyword: Span,
        written: TokenStream,
    ) -> Element {
        const FORM: &str = "`delay!(duration, element)`";
        let whole = |message: String| match written.is_empty() {
            true => syn::Error::new(keyword, message),
            false => syn::Error::new_spanned(&written, message),
        };
        if trees.is_empty() {
            self.cx
                .syn_error(whole(format!("expected a duration and an element: {FORM}")));
            return Element::Invalid;
        }
        let parsed = parse_tokens(trees, end, |input| {
            let duration = input.parse::<Expr>()?;
            if input.is_empty() {
                return Ok((duration, None));
            }
            let comma = input.parse::<Token![,]>().map_err(|_| {
                input.error(format!(
                    "expected `,` between the duration and the element: {FORM}"
                ))
            })?;
            Ok((duration, Some((comma, input.parse::<TokenStream>()?))))
        });
        match parsed {
            Err(error) => {
                self.cx.syn_error(error);
                Element::Invalid
            }
            // Without an element, the delay is kept around an invalid one, so that its
            // duration is still type-checked and the names it uses count as used.
            Ok((duration, None)) => {
                self.cx.syn_error(whole(format!(
                    "expected an element after the duration: {FORM}"
                )));
                Element::Delay(Delay {
                    keyword,
                    duration,
                    element: Box::new(Element::Invalid),
                })
            }
            Ok((duration, Some((comma, rest)))) => {
                let rest: Vec<TokenTree> = rest.into_iter().collect();
                let element = if rest.is_empty() {
                    self.cx.syn_error(syn::Error::new(
                        comma.span,
                        format!("expected an element after the duration: {FORM}"),
                    ));
                    Element::Invalid
                } else {
                    self.single(&rest, end, "`delay!` delays one element")
                };
                Element::Delay(Delay {
                    keyword,
                    duration,
                    element: Box::new(element),
                })
            }
        }
    }

    fn try_element(&self, chunk: &[TokenTree], end: Span) -> syn::Result<Element> {
        let Some(first) = chunk.first() else {
            return Err(syn::Error::new(
                end,
                format!("expected an element: {ELEMENTS}"),
            ));
        };
        // `{ expr }`
        if let TokenTree::Group(group) = first {
            if group.delimiter() == Delimiter::Brace {
                no_trailing(&chunk[1..], None)?;
                if group.stream().is_empty() {
                    return Err(syn::Error::new(
                        group.span(),
                        "expected an expression inside `{ }`: a workflow, a message, or a chain \
                         or group built at run time",
                    ));
                }
                let expr = parse_tokens(
                    &group.stream().into_iter().collect::<Vec<_>>(),
                    group.span_close(),
                    |input| {
                        let expr = input.parse::<Expr>()?;
                        if !input.is_empty() {
                            return Err(input.error(
                                "expected one expression inside `{ }`; wrap statements in another \
                             block: `{ { let w = ..; w } }`",
                            ));
                        }
                        Ok(expr)
                    },
                )?;
                return Ok(Element::Escape(Escape { expr }));
            }
        }
        let path_starts = matches!(first, TokenTree::Ident(_))
            || matches!(first, TokenTree::Punct(p) if p.as_char() == ':');
        if !path_starts {
            return Err(syn::Error::new(
                first.span(),
                format!("expected {ELEMENTS}"),
            ));
        }
        // The path runs up to the first group or `!`.
        let path_len = chunk
            .iter()
            .position(|t| {
                matches!(t, TokenTree::Group(_))
                    || matches!(t, TokenTree::Punct(p) if p.as_char() == '!')
            })
            .unwrap_or(chunk.len());
        let path_tokens = &chunk[..path_len];
        let after_path = chunk.get(path_len).map_or(end, TokenTree::span);
        let path = parse_tokens(path_tokens, after_path, |input| {
            let path = Path::parse_mod_style(input)?;
            if !input.is_empty() {
                return Err(input.error(
                    "expected `(` and the arguments: a step is an actor call such as `resize(id, 640)`",
                ));
            }
            Ok(path)
        })?;
        match &chunk[path_len..] {
            [] => Err(syn::Error::new_spanned(
                &path,
                format!(
                    "expected `(` and the arguments after `{0}`: a step is an actor call, \
                     `{0}(..)`",
                    pretty(&path)
                ),
            )),
            [TokenTree::Punct(bang), rest @ ..] if bang.as_char() == '!' => {
                let Some(TokenTree::Group(group)) = rest.first() else {
                    let at = rest.first().map_or(end, TokenTree::span);
                    return Err(syn::Error::new(at, format!("expected `[` after `{}!`", pretty(&path))));
                };
                no_trailing(&rest[1..], None)?;
                let written: TokenStream = chunk[..path_len + 2].iter().cloned().collect();
                let trees: Vec<TokenTree> = group.stream().into_iter().collect();
                let close = group.span_close();
                match keyword(&path).as_deref() {
                    Some("chain") => Ok(Element::Chain(self.literal(&trees, close, written))),
                    Some("group") => Ok(self.group(&trees, close, written)),
                    Some("delay") => Ok(self.delay(&trees, close, last_span(&path), written)),
                    _ => Err(syn::Error::new_spanned(
                        &path,
                        format!("unknown keyword `{}`; expected {ELEMENTS}", pretty(&path)),
                    )),
                }
            }
            [TokenTree::Group(group), rest @ ..] if group.delimiter() == Delimiter::Parenthesis => {
                no_trailing(rest, Some(&path))?;
                let args = parse_tokens(&group.stream().into_iter().collect::<Vec<_>>(), group.span_close(), |input| {
                    Punctuated::<Expr, Token![,]>::parse_terminated(input)
                })?;
                Ok(Element::Step(Step { path, paren: group.span(), args }))
            }
            [other, ..] => Err(syn::Error::new(
                other.span(),
                format!(
                    "expected `(` and the arguments after `{0}`: a step is an actor call, `{0}(..)`",
                    pretty(&path)
                ),
            )),
        }
    }
}

/// `chain`, `group` or `delay` when the path is one of them (also as `workflow::chain`), else
/// the path's last name when it has one segment.
fn keyword(path: &Path) -> Option<String> {
    let names: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
    match names.as_slice() {
        [name] if path.leading_colon.is_none() => Some(name.clone()),
        [krate, name]
            if krate == "workflow" && matches!(name.as_str(), "chain" | "group" | "delay") =>
        {
            Some(name.clone())
        }
        _ => None,
    }
}

/// Rejects tokens after a complete element; `step` gives a hint for a method call on a step.
fn no_trailing(rest: &[TokenTree], step: Option<&Path>) -> syn::Result<()> {
    let Some(first) = rest.first() else {
        return Ok(());
    };
    let message = match (first, step) {
        (TokenTree::Punct(p), Some(path)) if p.as_char() == '.' => format!(
            "a step is an actor call; to call methods on its message, write the message in \
             braces: `{{ {}::message(..).with_max_retries(3) }}`",
            pretty(path)
        ),
        _ => "expected `,` between elements".to_owned(),
    };
    Err(syn::Error::new(first.span(), message))
}

/// Splits a list at its top-level commas: each chunk with the comma that ends it. A trailing
/// comma does not make an empty last chunk.
fn split(trees: &[TokenTree]) -> Vec<(&[TokenTree], Option<&TokenTree>)> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for (i, tree) in trees.iter().enumerate() {
        if matches!(tree, TokenTree::Punct(p) if p.as_char() == ',') {
            chunks.push((&trees[start..i], Some(tree)));
            start = i + 1;
        }
    }
    if start < trees.len() {
        chunks.push((&trees[start..], None));
    }
    chunks
}

fn is_ident(tree: &TokenTree, name: &str) -> bool {
    matches!(tree, TokenTree::Ident(ident) if ident == name)
}

/// Whether `trees[i..]` starts with `=>`.
fn is_fat_arrow(trees: &[TokenTree], i: usize) -> bool {
    match (&trees[i], trees.get(i + 1)) {
        (TokenTree::Punct(eq), Some(TokenTree::Punct(gt))) => {
            eq.as_char() == '='
                && eq.spacing() == proc_macro2::Spacing::Joint
                && gt.as_char() == '>'
        }
        _ => false,
    }
}

/// The span of the path's last name.
pub(crate) fn last_span(path: &Path) -> Span {
    path.segments
        .last()
        .map_or_else(Span::call_site, |s| s.ident.span())
}

/// The path as the user would write it.
pub(crate) fn pretty(path: &Path) -> String {
    path.to_token_stream().to_string().replace(' ', "")
}

/// Parses `trees` with `parse`, in a buffer whose end is `end`: "unexpected end of input"
/// points at the user's next token (or closing delimiter) rather than at the whole macro call.
fn parse_tokens<T>(
    trees: &[TokenTree],
    end: Span,
    parse: impl FnOnce(ParseStream<'_>) -> syn::Result<T>,
) -> syn::Result<T> {
    let mut group = Group::new(Delimiter::Bracket, trees.iter().cloned().collect());
    group.set_span(end);
    let parser = |input: ParseStream<'_>| {
        let content;
        syn::bracketed!(content in input);
        let value = parse(&content)?;
        if !content.is_empty() {
            return Err(content.error("unexpected token"));
        }
        Ok(value)
    };
    parser.parse2(TokenTree::Group(group).into())
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
