//! The content of `delay!(duration, element)`: an expression for the duration, a comma and one
//! element.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::{Expr, Token};

use super::tokens::parse_tokens;
use super::Reader;
use crate::dsl::model::{Delay, Element};

impl Reader<'_> {
    /// The content of `delay!(..)`: a duration, a comma and one element.
    pub(super) fn delay(
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
}
