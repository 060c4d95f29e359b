//! Two actors with the same name in one binary: building the registry fails and names both
//! definitions. (In its own test binary: every actor linked into a binary is registered.)

use workflow::prelude::*;
use workflow::{Error, Registry};

mod images {
    use workflow::prelude::*;

    #[actor(name = "process")]
    pub async fn resize(image_id: u64) {
        let _ = image_id;
    }
}

mod videos {
    use workflow::prelude::*;

    #[actor(name = "process", queue = "videos")]
    pub async fn transcode(video_id: u64) {
        let _ = video_id;
    }
}

#[actor]
async fn unique() {}

#[test]
fn duplicate_names_are_reported_with_both_locations() {
    let err = Registry::linked().unwrap_err();
    match &err {
        Error::DuplicateActor {
            name,
            first,
            second,
        } => {
            assert_eq!(*name, "process");
            assert_eq!(
                first,
                "actor_duplicate::images (tests/actor_duplicate.rs:10)"
            );
            assert_eq!(
                second,
                "actor_duplicate::videos (tests/actor_duplicate.rs:19)"
            );
        }
        other => panic!("expected DuplicateActor, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("#[actor(name = \"...\")]"), "{text}");
    // Distinct actors are unaffected.
    let _ = unique::message();
    let _ = images::resize::message(1);
    let _ = videos::transcode::message(1);
}
