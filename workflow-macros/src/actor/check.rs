//! Checks: turns a [`Model`] into a [`Checked`] actor, or reports every problem at once.
//!
//! Each error points at the narrowest token the user wrote: the option's name or value, the
//! `const` keyword, the generics, the borrowed type. Problems the macro cannot see (a type that
//! is not serializable) are left to the type checks that `expand.rs` emits.

use quote::ToTokens;
use syn::ext::IdentExt;
use syn::{
    Expr, FnArg, GenericArgument, Ident, ItemFn, Lit, Pat, PathArguments, ReturnType, Safety, Type,
};

use super::parse::{Model, RawOption};
use crate::ctxt::Ctxt;
use crate::duration;

/// The option names `#[actor(...)]` accepts, in the order the docs list them.
pub(crate) const OPTION_NAMES: [&str; 7] = [
    "name",
    "queue",
    "max_retries",
    "min_backoff",
    "max_backoff",
    "time_limit",
    "max_age",
];

/// The queue of an actor without a `queue` option.
pub(crate) const DEFAULT_QUEUE: &str = "default";

/// An actor that passed every check: what `expand.rs` needs and nothing unchecked.
pub(crate) struct Checked {
    /// The actor's name on the wire.
    pub(crate) name: String,
    /// Its queue.
    pub(crate) queue: String,
    /// Its options.
    pub(crate) options: Options,
    /// The function, unchanged, to emit as written.
    pub(crate) func: ItemFn,
    /// `async fn` (else a plain `fn`, run on the blocking pool).
    pub(crate) is_async: bool,
    /// The parameters, in order.
    pub(crate) params: Vec<Param>,
    /// The declared return type; `None` for a function without `->`.
    pub(crate) output: Option<Type>,
}

/// The options given in `#[actor(...)]`, durations in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) max_retries: Option<u32>,
    pub(crate) min_backoff: Option<u64>,
    pub(crate) max_backoff: Option<u64>,
    pub(crate) time_limit: Option<u64>,
    pub(crate) max_age: Option<u64>,
}

/// One parameter of an actor: a plain name and an owned type.
pub(crate) struct Param {
    /// The name, as written (possibly raw, `r#type`), without `mut`.
    pub(crate) ident: Ident,
    /// The name as Python's keyword arguments spell it (`type` for `r#type`).
    pub(crate) name: String,
    /// The type, as written.
    pub(crate) ty: Type,
}

/// Checks the options and the function, reporting every problem to `cx`; returns the actor
/// built from the valid parts, to expand only if `cx` has no errors.
pub(crate) fn check(cx: &Ctxt, model: &Model) -> Checked {
    let (name, queue, options) = check_options(cx, &model.options);
    let func = model.func.clone();
    check_signature(cx, &func);
    let params = check_params(cx, &func);
    let output = check_output(cx, &func);
    let name = name.unwrap_or_else(|| func.sig.ident.unraw().to_string());
    let queue = queue.unwrap_or_else(|| DEFAULT_QUEUE.to_owned());
    let is_async = func.sig.asyncness.is_some();
    Checked {
        name,
        queue,
        options,
        func,
        is_async,
        params,
        output,
    }
}

// ---- Options ----

/// Checks `#[actor(...)]`'s options; returns the `name`, `queue` and the other options given.
fn check_options(cx: &Ctxt, raw: &[RawOption]) -> (Option<String>, Option<String>, Options) {
    let mut seen: Vec<String> = Vec::new();
    let mut name = None;
    let mut queue = None;
    let mut options = Options::default();
    // The `min_backoff` value, to compare with `max_backoff` at the end.
    let mut min_backoff_expr = None;

    for option in raw {
        let key = option.key.unraw().to_string();
        if !OPTION_NAMES.contains(&key.as_str()) {
            let expected = OPTION_NAMES.join(", ");
            cx.error_spanned_by(
                &option.key,
                format_args!("unknown option `{key}`; expected one of: {expected}"),
            );
            continue;
        }
        if seen.contains(&key) {
            cx.error_spanned_by(&option.key, format_args!("`{key}` given twice"));
            continue;
        }
        seen.push(key.clone());
        let Some(value) = &option.value else {
            let example = example(&key);
            cx.error_spanned_by(
                &option.key,
                format_args!("`{key}` needs a value: `{key} = {example}`"),
            );
            continue;
        };
        match key.as_str() {
            "name" => name = check_name(cx, value),
            "queue" => queue = check_queue(cx, value),
            "max_retries" => options.max_retries = check_max_retries(cx, value),
            "min_backoff" => {
                options.min_backoff = check_duration(cx, &key, value);
                min_backoff_expr = Some(value);
            }
            "max_backoff" => options.max_backoff = check_duration(cx, &key, value),
            "time_limit" => options.time_limit = check_duration(cx, &key, value),
            "max_age" => options.max_age = check_duration(cx, &key, value),
            _ => {} // not in OPTION_NAMES: reported above
        }
    }

    if let (Some(min), Some(max), Some(expr)) =
        (options.min_backoff, options.max_backoff, min_backoff_expr)
    {
        if min > max {
            cx.error_spanned_by(expr, "`min_backoff` is longer than `max_backoff`");
        }
    }
    (name, queue, options)
}

/// `name = "..."`: a string literal that is not empty.
fn check_name(cx: &Ctxt, value: &Expr) -> Option<String> {
    match literal(value) {
        Some(Lit::Str(s)) if s.value().trim().is_empty() => {
            cx.error_spanned_by(s, "the actor name must not be empty");
            None
        }
        Some(Lit::Str(s)) => Some(s.value()),
        _ => {
            cx.error_spanned_by(value, expected("name", "a string literal"));
            None
        }
    }
}

/// `queue = "..."`: a string literal that dramatiq accepts as a queue name.
fn check_queue(cx: &Ctxt, value: &Expr) -> Option<String> {
    match literal(value) {
        Some(Lit::Str(s)) => match queue_name_error(&s.value()) {
            Some(problem) => {
                cx.error_spanned_by(s, problem);
                None
            }
            None => Some(s.value()),
        },
        _ => {
            cx.error_spanned_by(value, expected("queue", "a string literal"));
            None
        }
    }
}

/// `max_retries = N`: an integer literal that fits in `u32`.
fn check_max_retries(cx: &Ctxt, value: &Expr) -> Option<u32> {
    match literal(value) {
        Some(Lit::Int(i)) => match i.base10_parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                cx.error_spanned_by(
                    i,
                    "`max_retries` must be a whole number from 0 to 4294967295",
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(value, expected("max_retries", "an integer literal"));
            None
        }
    }
}

/// A duration option: a string such as `"30s"`, in milliseconds. `time_limit` and `max_age`
/// must not be zero.
fn check_duration(cx: &Ctxt, key: &str, value: &Expr) -> Option<u64> {
    let lit = match literal(value) {
        Some(Lit::Str(s)) => s,
        Some(Lit::Int(_) | Lit::Float(_)) => {
            let expected = expected(key, "a duration string");
            cx.error_spanned_by(value, format_args!("{expected}; a bare number has no unit"));
            return None;
        }
        _ => {
            cx.error_spanned_by(value, expected(key, "a duration string"));
            return None;
        }
    };
    match duration::parse_millis(&lit.value()) {
        Ok(0) if key == "time_limit" || key == "max_age" => {
            cx.error_spanned_by(lit, format_args!("`{key}` must be longer than zero"));
            None
        }
        Ok(millis) => Some(millis),
        Err(problem) => {
            let forms = duration::ACCEPTED_FORMS;
            cx.error_spanned_by(
                lit,
                format_args!("invalid duration for `{key}`: {problem}; write {forms}"),
            );
            None
        }
    }
}

/// The literal in an option's value, looking through invisible groups (values passed through a
/// `macro_rules!` `$x:expr`) and parentheses.
fn literal(expr: &Expr) -> Option<&Lit> {
    match expr {
        Expr::Lit(lit) => Some(&lit.lit),
        Expr::Group(group) => literal(&group.expr),
        Expr::Paren(paren) => literal(&paren.expr),
        _ => None,
    }
}

/// An example value of an option, for error messages.
fn example(key: &str) -> &'static str {
    match key {
        "name" => "\"resize_image\"",
        "queue" => "\"images\"",
        "max_retries" => "5",
        "time_limit" => "\"30s\"",
        "max_age" => "\"1d\"",
        "max_backoff" => "\"1h\"",
        _ => "\"1s\"",
    }
}

/// "`key` expects <what>, e.g. `key = <example>`".
fn expected(key: &str, what: &str) -> String {
    format!("`{key}` expects {what}, e.g. `{key} = {}`", example(key))
}

/// Why `name` is not a queue name dramatiq accepts, if it is not.
fn queue_name_error(name: &str) -> Option<String> {
    let mut chars = name.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !valid {
        return Some(format!(
            "invalid queue name `{name}`: a queue name must match [a-zA-Z_][a-zA-Z0-9._-]*"
        ));
    }
    if name.ends_with(".DQ") || name.ends_with(".XQ") {
        return Some(format!(
            "invalid queue name `{name}`: names ending in `.DQ` or `.XQ` are reserved for \
             delay and dead-letter queues"
        ));
    }
    None
}

// ---- The function ----

/// Checks the function's qualifiers and generics.
fn check_signature(cx: &Ctxt, func: &ItemFn) {
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
fn check_params(cx: &Ctxt, func: &ItemFn) -> Vec<Param> {
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
fn check_output(cx: &Ctxt, func: &ItemFn) -> Option<Type> {
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
    use super::*;
    use crate::actor::parse::{parse_fn, parse_options};
    use proc_macro2::TokenStream;
    use quote::quote;

    fn run(args: TokenStream, item: TokenStream) -> Result<Checked, Vec<String>> {
        let options = parse_options(args).expect("options parse");
        let func = parse_fn(item).expect("fn parses");
        let cx = Ctxt::new();
        let checked = check(&cx, &Model { options, func });
        match cx.check() {
            Ok(()) => Ok(checked),
            Err(e) => Err(e.into_iter().map(|e| e.to_string()).collect()),
        }
    }

    fn errors(args: TokenStream, item: TokenStream) -> Vec<String> {
        match run(args, item) {
            Ok(_) => panic!("expected errors"),
            Err(e) => e,
        }
    }

    fn options(args: TokenStream) -> Checked {
        match run(
            args,
            quote!(
                async fn f() {}
            ),
        ) {
            Ok(checked) => checked,
            Err(e) => panic!("unexpected errors: {e:?}"),
        }
    }

    #[test]
    fn defaults() {
        let c = options(quote!());
        assert_eq!(c.name, "f");
        assert_eq!(c.queue, "default");
        assert_eq!(c.options, Options::default());
        assert!(c.is_async);
        assert!(c.output.is_none());
    }

    #[test]
    fn all_options() {
        let c = options(quote!(
            name = "resize_image",
            queue = "images.v2",
            max_retries = 5,
            min_backoff = "1s",
            max_backoff = "1h",
            time_limit = "1m30s",
            max_age = "1d"
        ));
        assert_eq!(c.name, "resize_image");
        assert_eq!(c.queue, "images.v2");
        assert_eq!(
            c.options,
            Options {
                max_retries: Some(5),
                min_backoff: Some(1_000),
                max_backoff: Some(3_600_000),
                time_limit: Some(90_000),
                max_age: Some(86_400_000),
            }
        );
    }

    #[test]
    fn raw_identifier_names() {
        let c = run(
            quote!(),
            quote!(
                fn r#type(r#match: u32) {}
            ),
        )
        .ok()
        .unwrap();
        assert_eq!(c.name, "type");
        assert_eq!(c.params[0].name, "match");
    }

    #[test]
    fn option_errors_all_at_once() {
        let e = errors(
            quote!(
                foo = 1,
                queue = "a",
                queue = "b",
                max_retries = "5",
                min_backoff = 1000,
                time_limit = "soon",
                name = "",
                max_age
            ),
            quote!(
                fn f() {}
            ),
        );
        assert_eq!(
            e,
            [
                "unknown option `foo`; expected one of: name, queue, max_retries, min_backoff, \
                 max_backoff, time_limit, max_age",
                "`queue` given twice",
                "`max_retries` expects an integer literal, e.g. `max_retries = 5`",
                "`min_backoff` expects a duration string, e.g. `min_backoff = \"1s\"`; a bare \
                 number has no unit",
                "invalid duration for `time_limit`: expected a number at `soon`; write a number \
                 and a unit (ms, s, m, h, d), largest first: \"500ms\", \"30s\", \"1m30s\", \
                 \"2h\", \"1d\"",
                "the actor name must not be empty",
                "`max_age` needs a value: `max_age = \"1d\"`",
            ]
        );
    }

    #[test]
    fn option_value_errors() {
        let e = |args| {
            errors(
                args,
                quote!(
                    fn f() {}
                ),
            )
        };
        assert_eq!(
            e(quote!(queue = "1st")),
            ["invalid queue name `1st`: a queue name must match [a-zA-Z_][a-zA-Z0-9._-]*"]
        );
        assert_eq!(
            e(quote!(queue = "my queue")),
            ["invalid queue name `my queue`: a queue name must match [a-zA-Z_][a-zA-Z0-9._-]*"]
        );
        assert!(e(quote!(queue = "images.DQ"))[0].contains("reserved"));
        assert_eq!(
            e(quote!(queue = QUEUE)),
            ["`queue` expects a string literal, e.g. `queue = \"images\"`"]
        );
        assert_eq!(
            e(quote!(max_retries = -1)),
            ["`max_retries` expects an integer literal, e.g. `max_retries = 5`"]
        );
        assert_eq!(
            e(quote!(max_retries = 5000000000)),
            ["`max_retries` must be a whole number from 0 to 4294967295"]
        );
        assert_eq!(
            e(quote!(time_limit = "0s")),
            ["`time_limit` must be longer than zero"]
        );
        assert_eq!(
            e(quote!(min_backoff = "1h", max_backoff = "1s")),
            ["`min_backoff` is longer than `max_backoff`"]
        );
        assert_eq!(
            e(quote!(r#type = 1))[0].split(';').next(),
            Some("unknown option `type`")
        );
    }

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
