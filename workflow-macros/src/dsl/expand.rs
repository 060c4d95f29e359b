//! Expansion: a checked literal into an expression of type `::workflow::__private::Workflow`.
//!
//! - A static part (see [`plan::is_static`]) becomes a block with a `static StaticPlan` table
//!   computed at compile time and a call of `Workflow::from_static` with its steps and delay
//!   values, evaluated in the order the user wrote them.
//! - The rest uses the builder API: `Workflow::chain([..])`, `Workflow::group([..])`,
//!   `Workflow::delay(d, ..)`, a `for` loop filling a `Group` for a fan-out, and
//!   `Into::<Workflow>::into(expr)` for `{ expr }`.
//! - A step `p::x(a, b)` becomes `{ let _ = <p::x as Actor>::NAME; step(p::x::message(a, b)) }`:
//!   the path and the arguments keep the user's spans, so a wrong argument is reported at the
//!   argument with the actor's signature, and the check reports a type that is not an actor at
//!   the path ("`x` is not an actor").
//! - A delay's value is bound to a local of type `::core::time::Duration` (the type spanned at the
//!   `delay` keyword), so a value of another type is reported at the user's expression.
//!
//! Generated code names only `::workflow::__private::...` and `::core::...`; its locals live in
//! the macro's hygiene context (`Span::mixed_site()`), so they cannot capture or shadow the
//! user's names.

use proc_macro2::{Delimiter, Group, Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use super::check::Checked;
use super::model::{Delay, Element, FanOut, Step};
use super::parse::last_span;
use super::plan::{self, Next, Plan, Slot};

/// The expression for a checked literal, preceded by the errors if there are any: the rest of
/// the literal is still expanded (errors replaced by empty workflows) so that rustc reports
/// the type errors of the valid steps too, and the value still has type `Workflow`.
pub(crate) fn expand(checked: &Checked, errors: Option<syn::Error>) -> TokenStream {
    let workflow = element(&checked.0);
    match errors {
        None => workflow,
        Some(errors) => {
            let errors = errors.into_compile_error();
            quote!({ #errors #workflow })
        }
    }
}

fn element(element: &Element) -> TokenStream {
    if plan::is_static(element) {
        if let Some(plan) = plan::flatten(element) {
            return static_plan(&plan);
        }
    }
    match element {
        Element::Step(s) => step(s),
        Element::Chain(literal) => {
            let elements = literal.elements.iter().map(self::element);
            quote!(::workflow::__private::Workflow::chain([#(#elements),*]))
        }
        Element::Group(literal) => {
            let elements = literal.elements.iter().map(self::element);
            quote!(::workflow::__private::Workflow::group([#(#elements),*]))
        }
        Element::FanOut(f) => fan_out(f),
        Element::Delay(d) => {
            let local = Ident::new("__workflow_delay", Span::mixed_site());
            let binding = delay_binding(d, &local);
            let inner = self::element(&d.element);
            quote!({
                #binding
                ::workflow::__private::Workflow::delay(#local, #inner)
            })
        }
        Element::Escape(escape) => {
            let expr = &escape.expr;
            quote_spanned!(expr.span()=> ::core::convert::Into::<::workflow::__private::Workflow>::into(#expr))
        }
        Element::Invalid => empty(),
    }
}

/// An empty workflow, in place of an element that had an error.
fn empty() -> TokenStream {
    quote!(::workflow::__private::Workflow::group(
        ::core::iter::empty::<::workflow::__private::Workflow>()
    ))
}

/// `{ let _ = <p::x as Actor>::NAME; step(p::x::message(args)) }`, spanned at the user's path
/// and parentheses. The check puts the path in a type position: a type that is not an actor
/// gets the `Actor` trait's message ("`x` is not an actor"), a plain function "expected type,
/// found function `x`".
fn step(step: &Step) -> TokenStream {
    let path = &step.path;
    let span = last_span(path);
    let check = quote_spanned!(span=> let _ = <#path as ::workflow::__private::Actor>::NAME;);
    let constructor = quote_spanned!(span=> #path::message);
    let mut args = Group::new(Delimiter::Parenthesis, step.args.to_token_stream());
    args.set_span(step.paren);
    quote!({
        #check
        ::workflow::__private::step(#constructor #args)
    })
}

/// `let local: ::core::time::Duration = expr;`, the type spanned at the `delay` keyword so that
/// rustc's "expected due to this" points there and "expected `Duration`" at the expression.
fn delay_binding(delay: &Delay, local: &Ident) -> TokenStream {
    let ty = quote_spanned!(delay.keyword=> ::core::time::Duration);
    let expr = &delay.duration;
    quote!(let #local: #ty = #expr;)
}

/// A fan-out: a `for` loop adding one member per item to a group.
fn fan_out(f: &FanOut) -> TokenStream {
    let members = Ident::new("__workflow_members", Span::mixed_site());
    // The iterator is bound first (a struct literal could not be written before the loop's
    // body); the local has the location of the user's expression, so that "`T` is not an
    // iterator" points there, and the macro's hygiene.
    let (for_token, pat, in_token, iter) = (&f.for_token, &f.pat, &f.in_token, &f.iter);
    let items = Ident::new(
        "__workflow_items",
        iter.span().resolved_at(Span::mixed_site()),
    );
    let body = element(&f.body);
    quote!({
        let mut #members = ::workflow::__private::Group::new();
        let #items = #iter;
        #for_token #pat #in_token #items {
            #members = ::workflow::__private::Group::with(#members, #body);
        }
        ::core::convert::Into::<::workflow::__private::Workflow>::into(#members)
    })
}

/// A static part: its plan as a `static` table, then its steps and delays bound in the order
/// they were written, then `Workflow::from_static`.
fn static_plan(plan: &Plan<'_>) -> TokenStream {
    let table = Ident::new("__workflow_plan", Span::mixed_site());
    let step_local = |i: usize| format_ident!("__workflow_step{}", i, span = Span::mixed_site());
    let delay_local = |i: usize| format_ident!("__workflow_delay{}", i, span = Span::mixed_site());

    let tasks = plan.tasks.iter().map(|task| {
        let next = next(task.next);
        let delays = &task.delays;
        quote!(::workflow::__private::StaticTask { next: #next, delays: &[#(#delays),*] })
    });
    let joins = plan.joins.iter().map(|(count, n)| {
        let n = next(*n);
        quote!((#count, #n))
    });
    let starts = plan.starts.iter().map(|start| quote!(&[#(#start),*]));
    let entry = &plan.entry;

    let bindings = plan.order.iter().map(|slot| match *slot {
        Slot::Step(i) => {
            let local = step_local(i);
            let step = step(plan.steps[i]);
            quote!(let #local = #step;)
        }
        Slot::Delay(i) => delay_binding(plan.delays[i], &delay_local(i)),
    });
    let steps = (0..plan.steps.len()).map(step_local);
    let delays = (0..plan.delays.len()).map(delay_local);
    // The table is a `static` in a block of its own, so that its name is not in scope where
    // the user's arguments are evaluated.
    quote!({
        let #table: &'static ::workflow::__private::StaticPlan = {
            static PLAN: ::workflow::__private::StaticPlan = ::workflow::__private::StaticPlan {
                tasks: &[#(#tasks),*],
                joins: &[#(#joins),*],
                starts: &[#(#starts),*],
                entry: &[#(#entry),*],
            };
            &PLAN
        };
        #(#bindings)*
        ::workflow::__private::Workflow::from_static(
            #table,
            ::core::convert::From::from([#(#steps),*]),
            ::core::convert::From::from([#(#delays),*]),
        )
    })
}

fn next(next: Next) -> TokenStream {
    match next {
        Next::Join(j) => quote!(::workflow::__private::Next::Join(#j)),
        Next::Start(s) => quote!(::workflow::__private::Next::Start(#s)),
        Next::End => quote!(::workflow::__private::Next::End),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::{expand as expand_macro, Entry};

    fn expanded(entry: Entry, input: TokenStream) -> String {
        normalized(expand_macro(entry, input))
    }

    /// The tokens as a string, without trailing commas (rustfmt adds them to the expected code).
    fn normalized(tokens: TokenStream) -> String {
        tokens
            .to_string()
            .replace(" ,]", "]")
            .replace(" , }", " }")
            .replace(" ,)", ")")
    }

    #[test]
    fn a_step_checks_the_actor_and_calls_its_constructor() {
        let out = expanded(Entry::Workflow, quote!(jobs::resize(id, 640)));
        let expected = quote!({
            let _ = <jobs::resize as ::workflow::__private::Actor>::NAME;
            ::workflow::__private::step(jobs::resize::message(id, 640))
        });
        assert_eq!(out, normalized(expected));
    }

    #[test]
    fn a_static_part_is_a_table() {
        let out = expanded(
            Entry::Workflow,
            quote!(chain![a(1), delay!(d, group![b(), c()])]),
        );
        let expected = quote!({
            let __workflow_plan: &'static ::workflow::__private::StaticPlan = {
                static PLAN: ::workflow::__private::StaticPlan =
                    ::workflow::__private::StaticPlan {
                        tasks: &[
                            ::workflow::__private::StaticTask {
                                next: ::workflow::__private::Next::Start(0u32),
                                delays: &[],
                            },
                            ::workflow::__private::StaticTask {
                                next: ::workflow::__private::Next::Join(0u32),
                                delays: &[0u16],
                            },
                            ::workflow::__private::StaticTask {
                                next: ::workflow::__private::Next::Join(0u32),
                                delays: &[0u16],
                            },
                        ],
                        joins: &[(2u32, ::workflow::__private::Next::End)],
                        starts: &[&[1u32, 2u32]],
                        entry: &[0u32],
                    };
                &PLAN
            };
            let __workflow_step0 = {
                let _ = <a as ::workflow::__private::Actor>::NAME;
                ::workflow::__private::step(a::message(1))
            };
            let __workflow_delay0: ::core::time::Duration = d;
            let __workflow_step1 = {
                let _ = <b as ::workflow::__private::Actor>::NAME;
                ::workflow::__private::step(b::message())
            };
            let __workflow_step2 = {
                let _ = <c as ::workflow::__private::Actor>::NAME;
                ::workflow::__private::step(c::message())
            };
            ::workflow::__private::Workflow::from_static(
                __workflow_plan,
                ::core::convert::From::from([__workflow_step0, __workflow_step1, __workflow_step2]),
                ::core::convert::From::from([__workflow_delay0]),
            )
        });
        assert_eq!(out, normalized(expected));
    }

    #[test]
    fn dynamic_parts_use_the_builder() {
        let out = expanded(
            Entry::Workflow,
            quote!(chain![a(), group![for x in xs => b(x)], { w }]),
        );
        let expected = quote!(::workflow::__private::Workflow::chain([
            {
                let _ = <a as ::workflow::__private::Actor>::NAME;
                ::workflow::__private::step(a::message())
            },
            {
                let mut __workflow_members = ::workflow::__private::Group::new();
                let __workflow_items = xs;
                for x in __workflow_items {
                    __workflow_members = ::workflow::__private::Group::with(__workflow_members, {
                        let _ = <b as ::workflow::__private::Actor>::NAME;
                        ::workflow::__private::step(b::message(x))
                    });
                }
                ::core::convert::Into::<::workflow::__private::Workflow>::into(__workflow_members)
            },
            ::core::convert::Into::<::workflow::__private::Workflow>::into(w)
        ]));
        assert_eq!(out, normalized(expected));
    }

    #[test]
    fn a_delayed_step_uses_the_builder() {
        let out = expanded(Entry::Delay, quote!(Duration::from_secs(1), a()));
        let expected = quote!({
            let __workflow_delay: ::core::time::Duration = Duration::from_secs(1);
            ::workflow::__private::Workflow::delay(__workflow_delay, {
                let _ = <a as ::workflow::__private::Actor>::NAME;
                ::workflow::__private::step(a::message())
            })
        });
        assert_eq!(out, normalized(expected));
    }

    #[test]
    fn errors_come_with_a_workflow_value() {
        let out = expanded(Entry::Workflow, quote!(chain![a(), parallel![b()]]));
        assert!(out.starts_with("{ :: core :: compile_error ! {"), "{out}");
        assert!(out.contains("unknown keyword `parallel`"), "{out}");
        assert!(
            out.contains(":: workflow :: __private :: Workflow :: chain"),
            "{out}"
        );
    }
}
