use workflow::Actor;

struct SomeStruct;

fn queue_of<A: Actor>() -> &'static str {
    A::QUEUE
}

fn main() {
    let _ = queue_of::<SomeStruct>();
}
