//! Maintenance: removes the dispatch consumers and experiment streams that benchmarks and tests
//! leave on a NATS server (`cargo run -p orderhub-events --example js_clean -- nats://…`).
use futures::StreamExt;

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("nats://127.0.0.1:4222".into());
    let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
    let mut names = js.stream_names();
    let mut streams = Vec::new();
    while let Some(Ok(n)) = names.next().await {
        streams.push(n);
    }
    for name in streams {
        if name.starts_with("EXP") || name.starts_with("BATCH") {
            let _ = js.delete_stream(&name).await;
            println!("deleted stream {name}");
            continue;
        }
        if !name.starts_with(orderhub_events::nats::STREAM_PREFIX) {
            continue;
        }
        let stream = js.get_stream(&name).await.unwrap();
        let mut consumers = stream.consumer_names();
        let mut n = 0;
        let mut all = Vec::new();
        while let Some(Ok(c)) = consumers.next().await {
            all.push(c);
        }
        for c in all {
            if stream.delete_consumer(&c).await.is_ok() {
                n += 1;
            }
        }
        println!("{name}: deleted {n} consumers");
    }
}
