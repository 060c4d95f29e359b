//! Checks of `#[actor(...)]`'s options: each name known and given once, each value a literal
//! of the right kind (a string, an integer, a duration string) and in range.

use syn::ext::IdentExt;
use syn::{Expr, Lit};

use crate::actor::parse::RawOption;
use crate::ctxt::Ctxt;
use crate::duration;

/// The option names `#[actor(...)]` accepts, in the order the docs list them.
const OPTION_NAMES: [&str; 7] = [
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

/// The options given in `#[actor(...)]`, durations in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Options {
    /// `max_retries`: how many times a failed message is retried.
    pub(crate) max_retries: Option<u32>,
    /// `min_backoff`: the shortest wait before a retry.
    pub(crate) min_backoff: Option<u64>,
    /// `max_backoff`: the longest wait before a retry.
    pub(crate) max_backoff: Option<u64>,
    /// `time_limit`: how long one run may take.
    pub(crate) time_limit: Option<u64>,
    /// `max_age`: how old a message may be and still run.
    pub(crate) max_age: Option<u64>,
}

/// Checks `#[actor(...)]`'s options; returns the `name`, `queue` and the other options given.
pub(super) fn check_options(
    cx: &Ctxt,
    raw: &[RawOption],
) -> (Option<String>, Option<String>, Options) {
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

/// The message "`key` expects WHAT, e.g. `key = EXAMPLE`", with the example of `key`.
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

#[cfg(test)]
mod tests {
    use quote::quote;

    use super::super::tests::{errors, options};
    use super::*;

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
}
