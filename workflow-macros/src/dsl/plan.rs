//! The compile-time flattening of the static parts of a literal.
//!
//! A part of a literal without fan-outs and without `{ expr }` is known entirely at compile
//! time except for its arguments and delay values. Its plan (task nodes, joins, start sets, what
//! follows each node) is computed here exactly as the runtime's `Workflow::plan` computes it
//! for the same shape, and emitted as a `static StaticPlan`; at run time the runtime only
//! renumbers it after the nodes built before it and fills in the messages and durations.
//!
//! The numbering follows the runtime's builder (`workflow-runtime/src/workflow/mod.rs`,
//! `Builder::build`), which is what `tests/dsl_static.rs` checks:
//! - tasks are numbered in the literal's reading order;
//! - a chain of `n` elements reserves `n - 1` start sets when it is reached (the start set of
//!   its element `i + 1` is the continuation of element `i`), then builds its elements in order;
//!   its last element continues with the chain's own continuation;
//! - a group adds its join (count = members, next = the group's continuation) when it is
//!   reached, then builds its members, each continuing with the join;
//! - a delay applies to the tasks that start when its element starts: the first element of a
//!   chain (recursively) and every member of a group. Delay slots are numbered in reading order
//!   and a task lists the slots that apply to it.

use super::model::{Delay, Element, Step};

/// What a node's completion does; `End` is the continuation of the static part as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Join(u32),
    Start(u32),
    End,
}

/// One task node: its continuation and the delay slots that apply when it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Task {
    pub(crate) next: Next,
    pub(crate) delays: Vec<u16>,
}

/// A step or a delay value, in the order the user wrote them (the order their expressions are
/// evaluated in).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The step of the task with this index.
    Step(usize),
    /// The delay with this slot index.
    Delay(usize),
}

/// The flattened plan of a static part.
pub(crate) struct Plan<'a> {
    pub(crate) tasks: Vec<Task>,
    /// Joins: count and continuation.
    pub(crate) joins: Vec<(u32, Next)>,
    pub(crate) starts: Vec<Vec<u32>>,
    pub(crate) entry: Vec<u32>,
    /// The step of each task, by task index.
    pub(crate) steps: Vec<&'a Step>,
    /// The delays, by slot index.
    pub(crate) delays: Vec<&'a Delay>,
    /// Steps and delays in reading order.
    pub(crate) order: Vec<Slot>,
}

/// Whether `element` is a maximal candidate for a static plan on its own: no fan-out, no
/// `{ expr }` and no invalid part inside, and at least one chain or group (a lone step or
/// delayed step gains nothing from a table).
pub(crate) fn is_static(element: &Element) -> bool {
    is_pure(element) && has_composite(element)
}

fn is_pure(element: &Element) -> bool {
    match element {
        Element::Step(_) => true,
        Element::Chain(l) | Element::Group(l) => l.elements.iter().all(is_pure),
        Element::Delay(d) => is_pure(&d.element),
        Element::FanOut(_) | Element::Escape(_) | Element::Invalid => false,
    }
}

fn has_composite(element: &Element) -> bool {
    match element {
        Element::Chain(_) | Element::Group(_) => true,
        Element::Delay(d) => has_composite(&d.element),
        _ => false,
    }
}

/// Flattens a static element (see [`is_static`]). `None` if it does not fit the table's
/// integer types (more than 65536 delays), in which case it is built at run time instead.
pub(crate) fn flatten(element: &Element) -> Option<Plan<'_>> {
    debug_assert!(is_static(element));
    let mut plan = Plan {
        tasks: Vec::new(),
        joins: Vec::new(),
        starts: Vec::new(),
        entry: Vec::new(),
        steps: Vec::new(),
        delays: Vec::new(),
        order: Vec::new(),
    };
    plan.entry = plan.build(element, Next::End, &[])?;
    Some(plan)
}

impl<'a> Plan<'a> {
    /// Adds the nodes of `element`, whose completion leads to `next` and whose start is delayed
    /// by the slots `delays`; returns the tasks that start when it starts.
    fn build(&mut self, element: &'a Element, next: Next, delays: &[u16]) -> Option<Vec<u32>> {
        match element {
            Element::Step(step) => {
                let node = u32::try_from(self.tasks.len()).ok()?;
                self.order.push(Slot::Step(self.tasks.len()));
                self.tasks.push(Task {
                    next,
                    delays: delays.to_vec(),
                });
                self.steps.push(step);
                Some(vec![node])
            }
            Element::Delay(delay) => {
                let slot = u16::try_from(self.delays.len()).ok()?;
                self.order.push(Slot::Delay(self.delays.len()));
                self.delays.push(delay);
                let mut delays = delays.to_vec();
                delays.push(slot);
                self.build(&delay.element, next, &delays)
            }
            Element::Chain(literal) => {
                let n = literal.elements.len();
                let first = self.starts.len();
                self.starts.extend((1..n).map(|_| Vec::new()));
                let mut entry = Vec::new();
                for (i, element) in literal.elements.iter().enumerate() {
                    let element_next = match i + 1 < n {
                        true => Next::Start(u32::try_from(first + i).ok()?),
                        false => next,
                    };
                    let element_delays = if i == 0 { delays } else { &[] };
                    let built = self.build(element, element_next, element_delays)?;
                    match i {
                        0 => entry = built,
                        _ => self.starts[first + i - 1] = built,
                    }
                }
                Some(entry)
            }
            Element::Group(literal) => {
                let join = u32::try_from(self.joins.len()).ok()?;
                self.joins
                    .push((u32::try_from(literal.elements.len()).ok()?, next));
                let mut entry = Vec::new();
                for element in &literal.elements {
                    entry.extend(self.build(element, Next::Join(join), delays)?);
                }
                Some(entry)
            }
            Element::FanOut(_) | Element::Escape(_) | Element::Invalid => {
                unreachable!("only static elements are flattened")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proc_macro2::TokenStream;
    use quote::quote;

    use super::Next::{End, Join, Start};
    use super::*;
    use crate::ctxt::Ctxt;
    use crate::dsl::parse::{parse, pretty};
    use crate::dsl::Entry;

    fn model(input: TokenStream) -> Element {
        let cx = Ctxt::new();
        let element = parse(&cx, Entry::Workflow, input);
        cx.check().expect("the input parses");
        element
    }

    fn task(next: Next, delays: &[u16]) -> Task {
        Task {
            next,
            delays: delays.to_vec(),
        }
    }

    fn names(plan: &Plan<'_>) -> Vec<String> {
        plan.steps.iter().map(|s| pretty(&s.path)).collect()
    }

    #[test]
    fn seed_diamond() {
        let e = model(quote!(chain![
            task1("arguments".into(), "go".into(), "here".into()),
            group![
                chain![task2(), task5()],
                task3(),
                chain![task4(), group![task6(), task7()]],
            ],
            task8(),
        ]));
        assert!(is_static(&e));
        let plan = flatten(&e).unwrap();
        assert_eq!(
            names(&plan),
            ["task1", "task2", "task5", "task3", "task4", "task6", "task7", "task8"]
        );
        assert_eq!(
            plan.tasks,
            [
                task(Start(0), &[]),
                task(Start(2), &[]),
                task(Join(0), &[]),
                task(Join(0), &[]),
                task(Start(3), &[]),
                task(Join(1), &[]),
                task(Join(1), &[]),
                task(End, &[]),
            ]
        );
        assert_eq!(plan.joins, [(3, Start(1)), (2, Join(0))]);
        assert_eq!(plan.starts, [vec![1, 3, 4], vec![7], vec![2], vec![5, 6]]);
        assert_eq!(plan.entry, [0]);
        assert!(plan.delays.is_empty());
        assert_eq!(plan.order, (0..8).map(Slot::Step).collect::<Vec<_>>());
    }

    #[test]
    fn nested_delays_apply_to_entry_tasks() {
        // d0 delays the whole chain: only its first element's tasks (a, b); d1 delays c; d2 and
        // d3 both delay e (nested), d2 alone delays nothing else.
        let e = model(quote!(delay!(
            d0,
            chain![
                group![a(), b()],
                delay!(d1, c()),
                delay!(d2, chain![delay!(d3, e()), f()]),
            ]
        )));
        let plan = flatten(&e).unwrap();
        assert_eq!(names(&plan), ["a", "b", "c", "e", "f"]);
        assert_eq!(
            plan.tasks,
            [
                task(Join(0), &[0]),
                task(Join(0), &[0]),
                task(Start(1), &[1]),
                task(Start(2), &[2, 3]),
                task(End, &[]),
            ]
        );
        assert_eq!(plan.joins, [(2, Start(0))]);
        assert_eq!(plan.starts, [vec![2], vec![3], vec![4]]);
        assert_eq!(plan.entry, [0, 1]);
        assert_eq!(plan.delays.len(), 4);
        use Slot::{Delay as D, Step as S};
        assert_eq!(
            plan.order,
            [D(0), S(0), S(1), D(1), S(2), D(2), D(3), S(3), S(4)]
        );
    }

    #[test]
    fn group_of_chains_and_delayed_group() {
        let e = model(quote!(group![
            chain![a(), b(), c()],
            delay!(d, group![x(), y()])
        ]));
        let plan = flatten(&e).unwrap();
        assert_eq!(names(&plan), ["a", "b", "c", "x", "y"]);
        assert_eq!(
            plan.tasks,
            [
                task(Start(0), &[]),
                task(Start(1), &[]),
                task(Join(0), &[]),
                task(Join(1), &[0]),
                task(Join(1), &[0]),
            ]
        );
        assert_eq!(plan.joins, [(2, End), (2, Join(0))]);
        assert_eq!(plan.starts, [vec![1], vec![2]]);
        assert_eq!(plan.entry, [0, 3, 4]);
    }

    #[test]
    fn what_is_static() {
        assert!(!is_static(&model(quote!(a()))));
        assert!(!is_static(&model(quote!(delay!(d, a())))));
        assert!(is_static(&model(quote!(delay!(d, chain![a()])))));
        assert!(!is_static(&model(quote!(chain![a(), { w }]))));
        assert!(!is_static(&model(quote!(chain![
            a(),
            group![for x in xs => b(x)]
        ]))));
        assert!(is_static(&model(quote!(group![chain![a(), b()]]))));
    }
}
