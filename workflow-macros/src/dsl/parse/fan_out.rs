//! The content of a fan-out, `group![for pat in iter => element]`: a pattern, an iterator
//! and the one element built for each item.

use proc_macro2::{Span, TokenTree};
use syn::{Expr, Pat, Token};

use super::tokens::{is_fat_arrow, is_ident, parse_tokens};
use super::Reader;
use crate::dsl::model::FanOut;

impl Reader<'_> {
    /// `for PAT in EXPR => ELEM`.
    pub(super) fn fan_out(&self, trees: &[TokenTree], end: Span) -> syn::Result<FanOut> {
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
}
