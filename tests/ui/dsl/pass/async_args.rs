//! Arguments are ordinary expressions, evaluated in the order they are written: `.await` and
//! `?` work in them, also inside fan-outs, and moves are fine after earlier uses.
use workflow::prelude::*;

mod jobs {
    use workflow::prelude::*;

    #[actor]
    pub async fn resize(image_id: u64, width: u32) {
        let _ = (image_id, width);
    }
}

#[actor]
async fn notify(bucket: String) {
    let _ = bucket;
}

async fn width() -> u32 {
    640
}

fn parse(s: &str) -> Result<u64, std::num::ParseIntError> {
    s.parse()
}

async fn build(
    bucket: String,
    ids: &[&str],
) -> Result<workflow::Workflow, std::num::ParseIntError> {
    Ok(workflow!(chain![
        jobs::resize(parse("1")?, width().await),
        group![for id in ids => jobs::resize(parse(id)?, width().await)],
        group![notify(bucket.clone()), crate::notify(bucket)],
    ]))
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let wf = rt.block_on(build("b".into(), &["2", "3"])).unwrap();
    assert_eq!(wf.plan().unwrap().len(), 5);
    assert!(rt.block_on(build("b".into(), &["x"])).is_err());
}
