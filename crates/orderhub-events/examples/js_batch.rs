//! Experiment: JetStream atomic batch publish (NATS 2.12+) with sync_interval: always.
use async_nats::HeaderMap;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("nats://127.0.0.1:4333".into());
    let client = async_nats::connect(&url).await.unwrap();
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let name = format!("BATCH{run}");
    let cfg = serde_json::json!({"name": name, "subjects": [format!("batch{run}.>")], "storage": "file", "allow_atomic": true, "num_replicas": 1});
    let r = client
        .request(
            format!("$JS.API.STREAM.CREATE.{name}"),
            cfg.to_string().into(),
        )
        .await
        .unwrap();
    println!(
        "create: {}",
        String::from_utf8_lossy(&r.payload)
            .chars()
            .take(300)
            .collect::<String>()
    );
    let n = 20_000;
    let size = 500;
    let t = Instant::now();
    let mut b = 0;
    while b * size < n {
        let id = format!("{run}-{b}");
        for i in 1..=size {
            let mut h = HeaderMap::new();
            h.insert("Nats-Batch-Id", id.as_str());
            h.insert("Nats-Batch-Sequence", i.to_string().as_str());
            h.insert("Nats-Msg-Id", format!("{id}-{i}").as_str());
            if i == size {
                h.insert("Nats-Batch-Commit", "1");
                let r = client
                    .request_with_headers(format!("batch{run}.x"), h, vec![b'x'; 400].into())
                    .await
                    .unwrap();
                if b == 0 {
                    println!("commit ack: {}", String::from_utf8_lossy(&r.payload));
                }
            } else {
                client
                    .publish_with_headers(format!("batch{run}.x"), h, vec![b'x'; 400].into())
                    .await
                    .unwrap();
            }
        }
        b += 1;
    }
    println!(
        "atomic batches of {size}: {:.0} msgs/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    // The same messages again (same Nats-Msg-Id) in a new batch: are they dropped as duplicates?
    let id = format!("{run}-again");
    for i in 1..=3 {
        let mut h = HeaderMap::new();
        h.insert("Nats-Batch-Id", id.as_str());
        h.insert("Nats-Batch-Sequence", i.to_string().as_str());
        h.insert("Nats-Msg-Id", format!("{run}-0-{i}").as_str());
        if i == 3 {
            h.insert("Nats-Batch-Commit", "1");
            let r = client
                .request_with_headers(format!("batch{run}.x"), h, vec![b'x'; 10].into())
                .await
                .unwrap();
            println!(
                "duplicate batch commit ack: {}",
                String::from_utf8_lossy(&r.payload)
            );
        } else {
            client
                .publish_with_headers(format!("batch{run}.x"), h, vec![b'x'; 10].into())
                .await
                .unwrap();
        }
    }
    let info = client
        .request(format!("$JS.API.STREAM.INFO.{name}"), "".into())
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&info.payload).unwrap();
    println!(
        "stream messages after the duplicate batch: {}",
        v["state"]["messages"]
    );
}
