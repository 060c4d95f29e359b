// A `pub` actor inside a module, used from outside it; the type and the function keep the
// function's visibility and live side by side.
use workflow::prelude::*;

mod media {
    use workflow::prelude::*;

    /// Resizes an image.
    #[actor(queue = "images")]
    pub async fn resize(image_id: u64, width: u32) -> Result<(), String> {
        let _ = (image_id, width);
        Ok(())
    }

    pub mod deep {
        use workflow::prelude::*;

        #[actor]
        pub(crate) fn thumbnail(image_id: u64) {
            let _ = image_id;
        }
    }
}

// An actor inside a function body.
fn local() -> workflow::TypedMessage<impl workflow::Actor> {
    #[actor]
    fn inner(x: u8) {
        let _ = x;
    }
    inner::message(1)
}

#[actor]
pub(crate) async fn top_level() {}

fn main() {
    let message = media::resize::message(42, 640).into_message().unwrap();
    assert_eq!(message.queue_name, "images");
    drop(media::resize(1, 2));
    let _ = media::deep::thumbnail::message(1);
    let _: workflow::TypedMessage<media::resize> = media::resize::message(1, 1);
    assert_eq!(local().into_message().unwrap().actor_name, "inner");
    let _ = top_level::message();
}
