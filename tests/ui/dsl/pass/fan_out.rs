//! Fan-outs over run-time data: any `IntoIterator`, any irrefutable pattern, nested, empty.
use workflow::prelude::*;

mod jobs {
    use workflow::prelude::*;

    #[actor(queue = "images")]
    pub async fn resize(image_id: u64, width: u32) {
        let _ = (image_id, width);
    }
}

#[actor]
async fn scan(bucket: String) {
    let _ = bucket;
}

fn main() {
    let bucket = String::from("photos");
    let ids = vec![1_u64, 2, 3];
    let sizes = [64_u32, 640];
    let wf = workflow!(chain![
        scan(bucket.clone()),
        group![for id in &ids => group![for &w in &sizes => jobs::resize(*id, w)]],
        group![for (i, id) in ids.iter().enumerate() => chain![
            jobs::resize(*id, i as u32),
            scan(format!("{bucket}/{i}")),
        ]],
        group![for id in Vec::<u64>::new() => jobs::resize(id, 1)],
    ]);
    assert_eq!(wf.plan().unwrap().len(), 1 + 6 + 6);
    let standalone = group![for id in ids => jobs::resize(id, 640)];
    assert_eq!(standalone.plan().unwrap().len(), 3);
}
