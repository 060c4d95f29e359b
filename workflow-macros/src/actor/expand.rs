//! Expansion: a [`Checked`] actor into the function, its marker type, the `Actor` impl, the
//! message constructor and the hidden registration.
//!
//! Generated code names only `::workflow::__private::...` and `::core::...`, so it compiles
//! whatever the user's module shadows (`Result`, `Ok`, `Vec`, ...) and the user depends on the
//! `workflow` crate alone. Code whose type errors belong to the user (a parameter type that is not
//! serializable) is spanned at the user's tokens with `quote_spanned!`.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{Attribute, FnArg, Ident, ItemFn};

use super::check::{Checked, Options, DEFAULT_QUEUE};
use crate::duration::format_millis;

/// The full expansion of a checked actor.
pub(crate) fn expand(actor: &Checked) -> TokenStream {
    let func = &actor.func;
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let cfgs = cfg_attrs(&func.attrs);
    let deprecated = func
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("deprecated"));
    let name = &actor.name;
    let queue = &actor.queue;
    let options = options_expr(&actor.options);

    let type_doc = type_doc(actor);
    let message_doc = message_doc(actor);
    // `message` carries the span of the function's name, so that rustc's "associated function
    // defined here" notes show the user's signature.
    let message = Ident::new("message", ident.span());
    let param_idents: Vec<&Ident> = actor.params.iter().map(|p| &p.ident).collect();
    let param_types: Vec<&syn::Type> = actor.params.iter().map(|p| &p.ty).collect();
    // Type checks, spanned at the user's types. `assert_arg` is called in the same function as
    // `to_arg`/`take_arg`, with the same span, so that rustc reports a type that is not
    // serializable once, with `ActorArg`'s message, instead of once per use.
    let assert_args: Vec<TokenStream> = actor.params.iter().map(|p| assert_arg(&p.ty)).collect();
    let to_args = actor.params.iter().map(|p| {
        let (ident, ty) = (&p.ident, &p.ty);
        quote_spanned!(ty.span()=> ::workflow::__private::to_arg::<#ty>(&#ident))
    });
    let handler = handler(actor);
    let marker = marker_type(
        &cfgs,
        &quote!(#[doc = #type_doc] #(#deprecated)*),
        vis,
        ident,
        name,
        &quote!(#queue),
        &options,
    );

    quote! {
        #func

        #marker

        #(#cfgs)*
        #[allow(dead_code, deprecated)]
        impl #ident {
            #[doc = #message_doc]
            #[must_use = "a message does nothing until it is sent or put in a workflow"]
            #[allow(clippy::too_many_arguments)]
            #vis fn #message(#(#param_idents: #param_types),*) -> ::workflow::__private::TypedMessage<#ident> {
                #(#assert_args)*
                ::workflow::__private::TypedMessage::from_args([#(#to_args),*])
            }
        }

        #(#cfgs)*
        #[allow(deprecated)]
        const _: () = {
            #handler
        };
    }
}

/// The handler that decodes a message's arguments and starts the function, and its
/// registration with `inventory`.
fn handler(actor: &Checked) -> TokenStream {
    let ident = &actor.func.sig.ident;
    let actor_ty = quote!(<#ident as ::workflow::__private::Actor>);
    // Names of our own locals live in the macro's hygiene context (mixed site), so parameters
    // named `args` or named like the function itself cannot clash with them.
    let args = Ident::new("__args", Span::mixed_site());
    let kwargs = Ident::new("__kwargs", Span::mixed_site());
    let handler = Ident::new("__HANDLER", Span::mixed_site());
    let locals: Vec<Ident> = (0..actor.params.len())
        .map(|i| format_ident!("__arg{}", i, span = Span::mixed_site()))
        .collect();
    let names = actor.params.iter().map(|p| &p.name);
    let bind =
        quote!(::workflow::__private::bind_args(#actor_ty::NAME, &[#(#names),*], #args, #kwargs)?);
    let decode = if actor.params.is_empty() {
        quote!(#bind;)
    } else {
        let takes = actor.params.iter().zip(&locals).map(|(p, local)| {
            let (ty, name) = (&p.ty, &p.name);
            quote_spanned! {ty.span()=>
                let #local: #ty = ::workflow::__private::take_arg::<#ty>(
                    #actor_ty::NAME,
                    #name,
                    ::core::option::Option::unwrap_or_default(::core::iter::Iterator::next(&mut #args)),
                )?;
            }
        });
        quote! {
            let mut #args = ::core::iter::IntoIterator::into_iter(#bind);
            #(#takes)*
        }
    };
    let assert_args = actor.params.iter().map(|p| assert_arg(&p.ty));
    // The output is converted with `<R as ActorReturn>::into_outcome`, spanned like
    // `assert_return::<R>()` in the same function, so that a return type that is not allowed is
    // reported once, at the user's return type.
    let (assert_return, outcome) = match &actor.output {
        Some(ty) => (
            quote_spanned!(ty.span()=> ::workflow::__private::assert_return::<#ty>();),
            quote_spanned!(ty.span()=> <#ty as ::workflow::__private::ActorReturn>::into_outcome),
        ),
        None => (
            quote!(::workflow::__private::assert_return::<()>();),
            quote!(<() as ::workflow::__private::ActorReturn>::into_outcome),
        ),
    };
    let call = quote_spanned!(ident.span()=> #ident(#(#locals),*));
    let run = if actor.is_async {
        quote_spanned!(ident.span()=> ::workflow::__private::run_async(async move { #outcome(#call.await) }))
    } else {
        quote_spanned!(ident.span()=> ::workflow::__private::run_blocking(move || #outcome(#call)))
    };
    quote! {
        const #handler: ::workflow::__private::Handler = |#args, #kwargs| {
            #(#assert_args)*
            #assert_return
            #decode
            ::core::result::Result::Ok(#run)
        };
        ::workflow::__private::inventory::submit! {
            ::workflow::__private::ActorEntry {
                name: #actor_ty::NAME,
                queue: #actor_ty::QUEUE,
                options: #actor_ty::OPTIONS,
                handler: #handler,
                location: ::core::concat!(
                    ::core::module_path!(), " (", ::core::file!(), ":", ::core::line!(), ")"
                ),
            }
        }
    }
}

/// `assert_arg::<T>();`, spanned at the user's type.
fn assert_arg(ty: &syn::Type) -> TokenStream {
    quote_spanned!(ty.span()=> ::workflow::__private::assert_arg::<#ty>();)
}

/// `ActorOptions { .. }` as a constant expression.
fn options_expr(options: &Options) -> TokenStream {
    fn some<T: quote::ToTokens>(value: Option<T>) -> TokenStream {
        match value {
            Some(value) => quote!(::core::option::Option::Some(#value)),
            None => quote!(::core::option::Option::None),
        }
    }
    let duration = |millis: Option<u64>| {
        some(millis.map(|ms| quote!(::core::time::Duration::from_millis(#ms))))
    };
    let max_retries = some(options.max_retries);
    let min_backoff = duration(options.min_backoff);
    let max_backoff = duration(options.max_backoff);
    let time_limit = duration(options.time_limit);
    let max_age = duration(options.max_age);
    quote! {
        ::workflow::__private::ActorOptions {
            max_retries: #max_retries,
            min_backoff: #min_backoff,
            max_backoff: #max_backoff,
            time_limit: #time_limit,
            max_age: #max_age,
        }
    }
}

/// The docs of the marker type: what it is, where its messages go, how to build one.
fn type_doc(actor: &Checked) -> String {
    let ident = &actor.func.sig.ident;
    let mut doc = format!(
        " The actor `{}`, run by the function [`{}()`](fn@{ident}).\n\n Build its messages with \
         [`{ident}::message`]({ident}::message); it runs on the queue `{}`.",
        actor.name,
        ident.unraw(),
        actor.queue,
    );
    let o = &actor.options;
    let durations = [
        ("min_backoff", o.min_backoff),
        ("max_backoff", o.max_backoff),
        ("time_limit", o.time_limit),
        ("max_age", o.max_age),
    ];
    let mut given: Vec<String> = o
        .max_retries
        .map(|n| format!("`max_retries = {n}`"))
        .into_iter()
        .collect();
    given.extend(
        durations
            .iter()
            .filter_map(|(key, ms)| ms.map(|ms| format!("`{key} = \"{}\"`", format_millis(ms)))),
    );
    if !given.is_empty() {
        doc.push_str(&format!("\n\n Options: {}.", given.join(", ")));
    }
    doc
}

/// The docs of `message`: what it returns, and where its parameters come from.
fn message_doc(actor: &Checked) -> String {
    let ident = &actor.func.sig.ident;
    format!(
        " A message for the actor `{}` with the arguments of [`{}()`](fn@{ident}), to send to a \
         broker or to use as a step of a workflow.",
        actor.name,
        ident.unraw(),
    )
}

/// The `#[cfg(..)]` attributes of the function, repeated on every generated item so that the
/// actor exists exactly when the function does.
fn cfg_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}

/// What to emit when the checks failed: the item as written, the errors and, if the item is a
/// free function, a stub of the public names (`name`, `name::message`) so that uses elsewhere
/// in the crate do not add a cascade of "cannot find" errors.
pub(crate) fn with_errors(
    item: TokenStream,
    func: Option<&ItemFn>,
    error: syn::Error,
) -> TokenStream {
    let errors = error.into_compile_error();
    let stub = func.filter(|f| f.sig.receiver().is_none()).map(stub);
    quote! {
        #item
        #stub
        #errors
    }
}

/// The braced marker type named like the function (a type only, so it coexists with the
/// function) and its `Actor` impl.
fn marker_type(
    cfgs: &[&Attribute],
    attrs: &TokenStream,
    vis: &syn::Visibility,
    ident: &Ident,
    name: &str,
    queue: &TokenStream,
    options: &TokenStream,
) -> TokenStream {
    quote! {
        #(#cfgs)*
        #attrs
        #[allow(
            non_camel_case_types,
            dead_code,
            missing_debug_implementations,
            missing_copy_implementations
        )]
        #vis struct #ident {
            _private: (),
        }

        #(#cfgs)*
        #[allow(deprecated)]
        impl ::workflow::__private::Actor for #ident {
            const NAME: &'static str = #name;
            const QUEUE: &'static str = #queue;
            const OPTIONS: ::workflow::__private::ActorOptions = #options;
        }
    }
}

/// The marker type, its `Actor` impl and a `message` with the function's parameter types, that
/// does nothing; only emitted next to a compile error.
fn stub(func: &ItemFn) -> TokenStream {
    let ident = &func.sig.ident;
    let vis = &func.vis;
    let cfgs = cfg_attrs(&func.attrs);
    let name = ident.unraw().to_string();
    let message = Ident::new("message", ident.span());
    let (generics, where_clause) = (&func.sig.generics, &func.sig.generics.where_clause);
    let types = func.sig.inputs.iter().filter_map(|arg| match arg {
        FnArg::Typed(typed) => Some(&typed.ty),
        FnArg::Receiver(_) => None,
    });
    let options = options_expr(&Options::default());
    let marker = marker_type(
        &cfgs,
        &TokenStream::new(),
        vis,
        ident,
        &name,
        &quote!(#DEFAULT_QUEUE),
        &options,
    );
    quote! {
        #marker

        #(#cfgs)*
        #[allow(dead_code, clippy::all)]
        impl #ident {
            #vis fn #message #generics (#(_: #types),*) -> ::workflow::__private::TypedMessage<#ident> #where_clause {
                ::core::unreachable!()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::{Spacing, TokenTree};
    use quote::quote;

    use super::*;

    /// Every absolute path (`::a::b`) in `tokens`, as the name right after the leading `::`.
    fn absolute_path_roots(tokens: TokenStream, roots: &mut Vec<String>) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        for (i, token) in tokens.iter().enumerate() {
            match token {
                TokenTree::Group(group) => absolute_path_roots(group.stream(), roots),
                TokenTree::Punct(p) if p.as_char() == ':' && p.spacing() == Spacing::Joint => {
                    let previous_is_path = i > 0
                        && match &tokens[i - 1] {
                            TokenTree::Ident(_) => true,
                            TokenTree::Punct(p) => p.as_char() == '>' || p.as_char() == ':',
                            _ => false,
                        };
                    if !previous_is_path {
                        if let Some(TokenTree::Ident(root)) = tokens.get(i + 2) {
                            roots.push(root.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn expand(args: TokenStream, item: TokenStream) -> String {
        crate::actor::expand(args, item).to_string()
    }

    #[test]
    fn names_only_the_facade_and_core() {
        let out = crate::actor::expand(
            quote!(queue = "images", max_retries = 5, min_backoff = "1s"),
            quote!(
                pub async fn resize(image_id: u64, mut width: u32) -> Result<(), String> {
                    Ok(())
                }
            ),
        );
        let mut roots = Vec::new();
        absolute_path_roots(out.clone(), &mut roots);
        assert!(roots.iter().any(|r| r == "workflow"));
        for root in &roots {
            assert!(
                root == "workflow" || root == "core",
                "generated code names `::{root}`"
            );
        }
        let out = out.to_string();
        assert!(!out.contains("workflow_runtime"), "{out}");
        assert!(!out.contains(":: inventory ::submit") && out.contains("__private :: inventory"));
    }

    #[test]
    fn keeps_the_function_and_adds_the_actor() {
        let out = expand(
            quote!(queue = "images", max_retries = 5, min_backoff = "1s"),
            quote!(
                pub async fn resize(image_id: u64, mut width: u32) -> Result<(), String> {
                    Ok(())
                }
            ),
        );
        assert!(out.starts_with(
            "pub async fn resize (image_id : u64 , mut width : u32) -> Result < () , String >"
        ));
        assert!(
            out.contains("pub struct resize { _private : () , }"),
            "{out}"
        );
        assert!(
            out.contains("const NAME : & 'static str = \"resize\""),
            "{out}"
        );
        assert!(
            out.contains("const QUEUE : & 'static str = \"images\""),
            "{out}"
        );
        assert!(
            out.contains("max_retries : :: core :: option :: Option :: Some (5u32)"),
            "{out}"
        );
        assert!(
            out.contains("min_backoff : :: core :: option :: Option :: Some (:: core :: time :: Duration :: from_millis (1000u64))"),
            "{out}"
        );
        // `mut` belongs to the function's body, not to the message constructor.
        assert!(
            out.contains("pub fn message (image_id : u64 , width : u32)"),
            "{out}"
        );
        assert!(out.contains("run_async"), "{out}");
        assert!(out.contains("\"image_id\" , \"width\""), "{out}");
    }

    #[test]
    fn plain_functions_run_on_the_blocking_pool() {
        let out = expand(
            quote!(),
            quote!(
                fn crunch(n: u64) {}
            ),
        );
        assert!(out.contains("run_blocking (move ||"), "{out}");
        assert!(out.contains("assert_return :: < () >"), "{out}");
    }

    #[test]
    fn cfg_attributes_are_repeated() {
        let out = expand(
            quote!(),
            quote!(
                #[cfg(feature = "x")]
                #[inline]
                fn f() {}
            ),
        );
        assert_eq!(out.matches("# [cfg (feature = \"x\")]").count(), 5, "{out}");
        assert_eq!(out.matches("# [inline]").count(), 1, "{out}");
    }

    #[test]
    fn on_error_the_item_stays_with_a_stub_and_the_errors() {
        let item = quote!(
            async fn greet<T>(name: &str, value: T) {}
        );
        let out = expand(quote!(queue = "a b"), item.clone());
        assert!(out.starts_with(&item.to_string()), "{out}");
        assert!(out.contains("struct greet"), "{out}");
        assert!(
            out.contains("fn message < T > (_ : & str , _ : T)"),
            "{out}"
        );
        assert_eq!(out.matches("compile_error").count(), 3, "{out}");
        assert!(!out.contains("inventory"), "{out}");
    }

    #[test]
    fn methods_and_other_items_get_no_stub() {
        let item = quote!(
            fn handle(&self) {}
        );
        let out = expand(quote!(), item.clone());
        assert!(!out.contains("struct"), "{out}");
        assert!(out.contains("compile_error"), "{out}");

        let item = quote!(
            struct S;
        );
        let out = expand(quote!(), item.clone());
        assert_eq!(out.matches("struct").count(), 1, "{out}");
        assert!(out.contains("compile_error"), "{out}");
    }

    #[test]
    fn docs_list_the_queue_options_and_parameters() {
        let out = expand(
            quote!(name = "resize_image", time_limit = "90s"),
            quote!(
                async fn resize(image_id: u64, sizes: Vec<Option<u32>>) {}
            ),
        );
        assert!(out.contains("The actor `resize_image`"), "{out}");
        assert!(out.contains("queue `default`"), "{out}");
        assert!(out.contains("`time_limit = \\\"1m30s\\\"`"), "{out}");
        assert!(
            out.contains("with the arguments of [`resize()`](fn@resize)"),
            "{out}"
        );
    }
}
