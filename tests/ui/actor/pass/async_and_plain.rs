// An `async fn` and a plain `fn` actor: both stay callable and build messages.
use workflow::prelude::*;
use workflow::Actor;

#[actor]
async fn fetch(url: String, retries: u8) -> Result<String, String> {
    Ok(format!("{url} {retries}"))
}

#[actor]
fn checksum(data: Vec<u8>) -> Result<u32, std::io::Error> {
    Ok(data.iter().map(|b| u32::from(*b)).sum())
}

#[actor]
fn no_return(mut count: u64) {
    count += 1;
    let _ = count;
}

fn main() {
    drop(fetch("https://example.com".to_owned(), 3));
    assert_eq!(checksum(vec![1, 2]).unwrap(), 3);
    no_return(1);

    let message = fetch::message("https://example.com".to_owned(), 3)
        .into_message()
        .unwrap();
    assert_eq!(
        message.args,
        [
            serde_json::json!("https://example.com"),
            serde_json::json!(3)
        ]
    );
    let message = checksum::message(vec![1, 2]).into_message().unwrap();
    assert_eq!(message.actor_name, "checksum");
    let _ = no_return::message(7);
    assert_eq!(<checksum as Actor>::QUEUE, "default");
}
