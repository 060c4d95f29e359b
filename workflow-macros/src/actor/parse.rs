//! Parsing: the tokens of `#[actor(...)]` and of the function into a [`Model`].
//!
//! Only syntax is checked here; what the options and the function mean is `check/`'s job.

use proc_macro2::TokenStream;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::{Expr, Ident, Item, ItemFn, Token};

use crate::ctxt::Ctxt;

/// What the user wrote: the options, unvalidated, and the function.
pub(crate) struct Model {
    /// The `key = value` pairs of `#[actor(...)]`, in order, duplicates included.
    pub(crate) options: Vec<RawOption>,
    /// The function under the attribute, as written.
    pub(crate) func: ItemFn,
}

/// One option of `#[actor(...)]`: `key = value`, or a bare `key`.
pub(crate) struct RawOption {
    /// The option's name.
    pub(crate) key: Ident,
    /// Its value; `None` when the option was written without `= value`.
    pub(crate) value: Option<Expr>,
}

/// Parses the attribute's arguments and the item under it, reporting syntax errors to `cx`.
///
/// `None` when the item is not a function: then there is nothing to check, and the options are
/// not read. Options with a syntax error count as none given, so that the function is still
/// checked and its errors come in the same compile.
pub(crate) fn parse(cx: &Ctxt, args: TokenStream, item: TokenStream) -> Option<Model> {
    let func = match parse_fn(item) {
        Ok(func) => func,
        Err(error) => {
            cx.syn_error(error);
            return None;
        }
    };
    let options = parse_options(args).unwrap_or_else(|error| {
        cx.syn_error(error);
        Vec::new()
    });
    Some(Model { options, func })
}

/// Parses the attribute's arguments: a comma-separated list of `key = value`.
///
/// Values are parsed as expressions so that a wrong kind of value (`max_retries = "5"`,
/// `queue = QUEUE`) is reported by the checks with a precise message instead of a syntax error.
pub(crate) fn parse_options(args: TokenStream) -> syn::Result<Vec<RawOption>> {
    let parser = |input: ParseStream<'_>| {
        let mut options = Vec::new();
        while !input.is_empty() {
            if !input.peek(Ident::peek_any) {
                return Err(input.error("expected an option such as `queue = \"images\"`"));
            }
            let key = input.call(Ident::parse_any)?;
            let value = if input.peek(Token![=]) {
                input.parse::<Token![=]>()?;
                Some(input.parse::<Expr>()?)
            } else {
                None
            };
            options.push(RawOption { key, value });
            if input.is_empty() {
                break;
            }
            if !input.peek(Token![,]) {
                return Err(input.error("expected `,` between options"));
            }
            input.parse::<Token![,]>()?;
        }
        Ok(options)
    };
    parser.parse2(args)
}

/// Parses the item under the attribute; anything but a function with a body is an error.
pub(crate) fn parse_fn(item: TokenStream) -> syn::Result<ItemFn> {
    match syn::parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => Ok(func),
        Ok(other) => Err(syn::Error::new_spanned(
            item_keyword(&other).unwrap_or_else(|| item.clone()),
            "#[actor] goes on a function: `async fn name(..)` or `fn name(..)`",
        )),
        Err(e) => Err(e),
    }
}

/// The tokens that say what kind of item this is (`struct`, `impl`, ...), to point at.
fn item_keyword(item: &Item) -> Option<TokenStream> {
    use quote::ToTokens;
    Some(match item {
        Item::Const(i) => i.const_token.to_token_stream(),
        Item::Enum(i) => i.enum_token.to_token_stream(),
        Item::ExternCrate(i) => i.extern_token.to_token_stream(),
        Item::ForeignMod(i) => i.abi.to_token_stream(),
        Item::Impl(i) => i.impl_token.to_token_stream(),
        Item::Macro(i) => i.mac.path.to_token_stream(),
        Item::Mod(i) => i.mod_token.to_token_stream(),
        Item::Static(i) => i.static_token.to_token_stream(),
        Item::Struct(i) => i.struct_token.to_token_stream(),
        Item::Trait(i) => i.trait_token.to_token_stream(),
        Item::TraitAlias(i) => i.trait_token.to_token_stream(),
        Item::Type(i) => i.type_token.to_token_stream(),
        Item::Union(i) => i.union_token.to_token_stream(),
        Item::Use(i) => i.use_token.to_token_stream(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn keys(options: &[RawOption]) -> Vec<String> {
        options.iter().map(|o| o.key.to_string()).collect()
    }

    #[test]
    fn empty() {
        assert!(parse_options(quote!()).unwrap().is_empty());
    }

    #[test]
    fn key_values_in_order() {
        let options = parse_options(quote!(
            queue = "images",
            max_retries = 5,
            min_backoff = "1s",
        ))
        .unwrap();
        assert_eq!(keys(&options), ["queue", "max_retries", "min_backoff"]);
        assert!(options.iter().all(|o| o.value.is_some()));
    }

    #[test]
    fn duplicates_and_unknown_keys_are_kept_for_the_checks() {
        let options = parse_options(quote!(queue = "a", queue = "b", type = 1, foo)).unwrap();
        assert_eq!(keys(&options), ["queue", "queue", "type", "foo"]);
        assert!(options[3].value.is_none());
    }

    #[test]
    fn any_expression_is_a_value() {
        let options = parse_options(quote!(queue = QUEUE, max_retries = -1)).unwrap();
        assert!(matches!(options[0].value, Some(Expr::Path(_))));
        assert!(matches!(options[1].value, Some(Expr::Unary(_))));
    }

    #[test]
    fn syntax_errors() {
        let err = |tokens| parse_options(tokens).err().unwrap().to_string();
        assert_eq!(
            err(quote!("images")),
            "expected an option such as `queue = \"images\"`"
        );
        assert_eq!(
            err(quote!(queue = "a" max_retries = 1)),
            "expected `,` between options"
        );
        assert_eq!(
            err(quote!(queue = )),
            "unexpected end of input, expected an expression"
        );
    }

    #[test]
    fn functions_only() {
        assert!(parse_fn(quote!(
            async fn f(x: u32) {}
        ))
        .is_ok());
        assert!(parse_fn(quote!(
            pub fn f() -> Result<(), E> {
                Ok(())
            }
        ))
        .is_ok());
        let err = parse_fn(quote!(
            struct S;
        ))
        .err()
        .unwrap();
        assert_eq!(
            err.to_string(),
            "#[actor] goes on a function: `async fn name(..)` or `fn name(..)`"
        );
    }
}
