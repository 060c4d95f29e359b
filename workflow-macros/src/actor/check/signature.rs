//! Checks of the function under `#[actor]`: no qualifier a worker cannot honour (`const`,
//! `unsafe`, `extern`, ...), no generics, parameters that are plain names with owned types, and
//! a return type that is named.

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{FnArg, GenericArgument, Ident, ItemFn, Pat, PathArguments, ReturnType, Safety, Type};

use crate::ctxt::Ctxt;

/// One parameter of an actor: a plain name and an owned type.
pub(crate) struct Param {
    /// The name, as written (possibly raw, `r#type`), without `mut`.
    pub(crate) ident: Ident,
    /// The name as Python's keyword arguments spell it (`type` for `r#type`).
    pub(crate) name: String,
    /// The type, as written.
    pub(crate) ty: Type,
}

/// Checks the function's qualifiers and generics.
pub(super) fn check_signature(cx: &Ctxt, func: &ItemFn) {
    let sig = &func.sig;
    if let Some(default) = &func.modifiers.defaultness {
        cx.error_spanned_by(default, "actors cannot be `default fn`");
    }
    if let Some(constness) = &sig.constness {
        cx.error_spanned_by(constness, "actors cannot be `const fn`: remove `const`");
    }
    match &sig.safety {
        Safety::Unsafe(unsafety) => cx.error_spanned_by(
            unsafety,
            "actors cannot be `unsafe fn`: a worker calls them with arguments from a message; \
             use an `unsafe` block inside instead",
        ),
        Safety::Safe(safe) => cx.error_spanned_by(safe, "actors cannot be `safe fn`"),
        _ => {}
    }
    if let Some(abi) = &sig.abi {
        cx.error_spanned_by(abi, "actors cannot be `extern` functions: remove the ABI");
    }
    if let Some(variadic) = &sig.variadic {
        cx.error_spanned_by(variadic, "actors cannot be variadic");
    }
    const GENERIC: &str = "actors cannot be generic: a worker decodes each argument of a message \
                           into one concrete type; use concrete types";
    if !sig.generics.params.is_empty() {
        cx.error_spanned_by(&sig.generics, GENERIC);
    } else if let Some(where_clause) = &sig.generics.where_clause {
        cx.error_spanned_by(where_clause, GENERIC);
    }
}

/// Checks the parameters; returns the valid ones.
pub(super) fn check_params(cx: &Ctxt, func: &ItemFn) -> Vec<Param> {
    let mut params = Vec::new();
    for arg in &func.sig.inputs {
        let typed = match arg {
            FnArg::Receiver(receiver) => {
                cx.error_spanned_by(
                    receiver,
                    "actors cannot take `self`: put #[actor] on a free function, not a method",
                );
                continue;
            }
            FnArg::Typed(typed) => typed,
        };
        if let Some(attr) = typed.attrs.first() {
            cx.error_spanned_by(attr, "attributes on actor parameters are not supported");
        }
        let ident = match &*typed.pat {
            Pat::Ident(p) if p.by_ref.is_none() && p.subpat.is_none() && p.attrs.is_empty() => {
                Some(p.ident.clone())
            }
            Pat::Wild(wild) => {
                cx.error_spanned_by(
                    wild,
                    "actor parameters need a name, which messages may use as a keyword: write \
                     `_unused: T` instead of `_: T`",
                );
                None
            }
            other => {
                cx.error_spanned_by(
                    other,
                    "actor parameters must be plain names like `image_id: u64`; destructure \
                     inside the function body",
                );
                None
            }
        };
        let owned = check_owned(cx, &typed.ty);
        if let (Some(ident), true) = (ident, owned) {
            let name = ident.unraw().to_string();
            params.push(Param {
                ident,
                name,
                ty: (*typed.ty).clone(),
            });
        }
    }
    params
}

/// Reports every borrow, non-`'static` lifetime and `impl Trait` inside a parameter type;
/// returns whether there was none.
fn check_owned(cx: &Ctxt, ty: &Type) -> bool {
    match ty {
        Type::Reference(reference) => {
            let owned = owned_alternative(&reference.elem);
            let written = pretty(reference);
            cx.error_spanned_by(
                reference,
                format_args!(
                    "actor parameters must be owned (use `{owned}` instead of `{written}`)"
                ),
            );
            false
        }
        Type::ImplTrait(impl_trait) => {
            cx.error_spanned_by(
                impl_trait,
                "actors cannot be generic: `impl Trait` parameters are not allowed; use a \
                 concrete type",
            );
            false
        }
        Type::Paren(t) => check_owned(cx, &t.elem),
        Type::Group(t) => check_owned(cx, &t.elem),
        Type::Array(t) => check_owned(cx, &t.elem),
        Type::Slice(t) => check_owned(cx, &t.elem),
        // Count, not `all`: every problem is reported, not only the first.
        Type::Tuple(t) => {
            let problems = t.elems.iter().filter(|elem| !check_owned(cx, elem)).count();
            problems == 0
        }
        Type::Path(path) => {
            let mut ok = match &path.qself {
                Some(qself) => check_owned(cx, &qself.ty),
                None => true,
            };
            for segment in &path.path.segments {
                let PathArguments::AngleBracketed(args) = &segment.arguments else {
                    continue;
                };
                for arg in &args.args {
                    ok = match arg {
                        GenericArgument::Lifetime(lifetime) if lifetime.ident != "static" => {
                            cx.error_spanned_by(
                                lifetime,
                                format_args!(
                                    "actor parameters must be owned (use an owned type instead \
                                     of one that borrows for `{lifetime}`)"
                                ),
                            );
                            false
                        }
                        GenericArgument::Type(ty) => check_owned(cx, ty),
                        GenericArgument::AssocType(assoc) => check_owned(cx, &assoc.ty),
                        _ => true,
                    } && ok;
                }
            }
            ok
        }
        _ => true,
    }
}

/// What to write instead of `&elem`: `String` for `str`, `Vec<T>` for `[T]`, ...
fn owned_alternative(elem: &Type) -> String {
    match elem {
        Type::Slice(slice) => format!("Vec<{}>", pretty(&slice.elem)),
        Type::Path(path) if path.qself.is_none() => {
            let Some(last) = path.path.segments.last() else {
                return pretty(elem);
            };
            if !matches!(last.arguments, PathArguments::None) {
                return pretty(elem);
            }
            let owned = match last.ident.to_string().as_str() {
                "str" => return "String".to_owned(),
                "Path" => "PathBuf",
                "OsStr" => "OsString",
                "CStr" => "CString",
                _ => return pretty(elem),
            };
            let mut path = path.clone();
            if let Some(last) = path.path.segments.last_mut() {
                last.ident = Ident::new(owned, last.ident.span());
            }
            pretty(path)
        }
        Type::Paren(paren) => owned_alternative(&paren.elem),
        Type::Group(group) => owned_alternative(&group.elem),
        _ => pretty(elem),
    }
}

/// Tokens as a person writes them: `Vec<u8>` rather than `Vec < u8 >`.
fn pretty(tokens: impl ToTokens) -> String {
    let text = tokens.to_token_stream().to_string();
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut prev = ' ';
    while let Some(c) = chars.next() {
        if c == ' ' {
            let next = chars.peek().copied().unwrap_or(' ');
            let glue_after = matches!(prev, '<' | '&' | ':' | '(' | '[');
            let glue_before = matches!(next, '<' | '>' | ',' | ':' | ')' | ']' | ';');
            if glue_after || glue_before {
                continue;
            }
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Checks the return type; returns it, or `None` for a function without `->`.
pub(super) fn check_output(cx: &Ctxt, func: &ItemFn) -> Option<Type> {
    match &func.sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => {
            if let Some(impl_trait) = find_impl_trait(ty) {
                cx.error_spanned_by(
                    impl_trait,
                    "actors cannot return `impl Trait`: name the type, e.g. `Result<(), MyError>`",
                );
            }
            Some((**ty).clone())
        }
    }
}

/// The first `impl Trait` inside `ty`.
fn find_impl_trait(ty: &Type) -> Option<&Type> {
    match ty {
        Type::ImplTrait(_) => Some(ty),
        Type::Paren(t) => find_impl_trait(&t.elem),
        Type::Group(t) => find_impl_trait(&t.elem),
        Type::Array(t) => find_impl_trait(&t.elem),
        Type::Slice(t) => find_impl_trait(&t.elem),
        Type::Reference(t) => find_impl_trait(&t.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(path) => {
            path.path
                .segments
                .iter()
                .find_map(|segment| match &segment.arguments {
                    PathArguments::AngleBracketed(args) => {
                        args.args.iter().find_map(|arg| match arg {
                            GenericArgument::Type(ty) => find_impl_trait(ty),
                            _ => None,
                        })
                    }
                    _ => None,
                })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::super::tests::{errors, run};
    use super::*;

    #[test]
    fn signature_errors_all_at_once() {
        let e = errors(
            quote!(),
            quote!(
                const unsafe extern "C" fn f<T>(self, x: &str, (a, b): (u8, u8), _: u8, y: &[u8]) {}
            ),
        );
        assert_eq!(e.len(), 9, "{e:#?}");
        assert!(e[0].starts_with("actors cannot be `const fn`"));
        assert!(e[1].starts_with("actors cannot be `unsafe fn`"));
        assert!(e[2].starts_with("actors cannot be `extern` functions"));
        assert!(e[3].starts_with("actors cannot be generic"));
        assert!(e[4].starts_with("actors cannot take `self`"));
        assert_eq!(
            e[5],
            "actor parameters must be owned (use `String` instead of `&str`)"
        );
        assert!(e[6].starts_with("actor parameters must be plain names"));
        assert!(e[7].starts_with("actor parameters need a name"));
        assert_eq!(
            e[8],
            "actor parameters must be owned (use `Vec<u8>` instead of `&[u8]`)"
        );
    }

    #[test]
    fn borrowed_parameters() {
        let e = |item| errors(quote!(), item);
        assert_eq!(
            e(quote!(
                fn f(x: &[u8]) {}
            )),
            ["actor parameters must be owned (use `Vec<u8>` instead of `&[u8]`)"]
        );
        assert_eq!(
            e(quote!(fn f(x: &'static mut Vec<Option<u8>>) {})),
            ["actor parameters must be owned (use `Vec<Option<u8>>` instead of `&'static mut Vec<Option<u8>>`)"]
        );
        assert_eq!(
            e(quote!(fn f(x: Vec<&std::path::Path>) {})),
            ["actor parameters must be owned (use `std::path::PathBuf` instead of `&std::path::Path`)"]
        );
        assert_eq!(
            e(quote!(fn f(x: Cow<'a, str>) {})),
            ["actor parameters must be owned (use an owned type instead of one that borrows for `'a`)"]
        );
        assert_eq!(
            e(quote!(
                fn f(x: (u8, &str), y: [&str; 2]) {}
            )),
            [
                "actor parameters must be owned (use `String` instead of `&str`)",
                "actor parameters must be owned (use `String` instead of `&str`)"
            ]
        );
        assert!(e(quote!(
            fn f(x: impl Serialize) {}
        ))[0]
            .starts_with("actors cannot be generic"));
        assert!(run(
            quote!(),
            quote!(
                fn f(x: Cow<'static, str>, mut y: Vec<u8>) {}
            )
        )
        .is_ok());
    }

    #[test]
    fn return_types() {
        assert!(run(
            quote!(),
            quote!(
                fn f() -> Result<u8, String> {
                    Ok(1)
                }
            )
        )
        .ok()
        .unwrap()
        .output
        .is_some());
        assert_eq!(
            errors(
                quote!(),
                quote!(
                    fn f() -> impl Future<Output = ()> {
                        async {}
                    }
                )
            ),
            ["actors cannot return `impl Trait`: name the type, e.g. `Result<(), MyError>`"]
        );
    }

    #[test]
    fn where_clause_is_generic() {
        let e = errors(
            quote!(),
            quote!(
                fn f()
                where
                    u8: Copy,
                {
                }
            ),
        );
        assert!(e[0].starts_with("actors cannot be generic"));
    }

    #[test]
    fn pretty_types() {
        assert_eq!(pretty(quote!(Vec<Option<u8>>)), "Vec<Option<u8>>");
        assert_eq!(pretty(quote!(&'a mut [u8; 4])), "&'a mut [u8; 4]");
        assert_eq!(
            pretty(quote!(HashMap<String, (u8, u16)>)),
            "HashMap<String, (u8, u16)>"
        );
        assert_eq!(
            pretty(quote!(::std::string::String)),
            "::std::string::String"
        );
    }
}
