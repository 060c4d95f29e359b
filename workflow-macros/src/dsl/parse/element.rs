//! One element: `{ expr }`, a step `path(args)`, or a keyword macro `chain![..]`,
//! `group![..]`, `delay!(..)` whose content is read by the other files of `parse/`.

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::{Expr, Path, Token};

use super::tokens::{last_span, parse_tokens, pretty};
use super::{Reader, ELEMENTS};
use crate::dsl::model::{Element, Escape, Step};

impl Reader<'_> {
    /// One element, or the error that makes it invalid: `{ expr }`, a step `path(args)` or
    /// a keyword macro `chain![..]`, `group![..]`, `delay!(..)`.
    pub(super) fn try_element(&self, chunk: &[TokenTree], end: Span) -> syn::Result<Element> {
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
