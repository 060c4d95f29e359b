// Every option at once; durations are converted while compiling.
use std::time::Duration;
use workflow::prelude::*;
use workflow::Actor;

#[actor(
    name = "resize_image",
    queue = "images.v2-hi_prio",
    max_retries = 0,
    min_backoff = "500ms",
    max_backoff = "2h",
    time_limit = "1m30s",
    max_age = "1d"
)]
async fn resize(image_id: u64, width: u32) -> Result<(), String> {
    let _ = (image_id, width);
    Ok(())
}

fn main() {
    assert_eq!(<resize as Actor>::NAME, "resize_image");
    assert_eq!(<resize as Actor>::QUEUE, "images.v2-hi_prio");
    let options = <resize as Actor>::OPTIONS;
    assert_eq!(options.max_retries, Some(0));
    assert_eq!(options.min_backoff, Some(Duration::from_millis(500)));
    assert_eq!(options.max_backoff, Some(Duration::from_secs(7200)));
    assert_eq!(options.time_limit, Some(Duration::from_secs(90)));
    assert_eq!(options.max_age, Some(Duration::from_secs(86_400)));
}
