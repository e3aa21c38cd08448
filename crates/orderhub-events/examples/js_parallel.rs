//! Experiment: JetStream publish throughput with sync_interval: always, one stream vs several.
use async_nats::jetstream::{self, context::Publish, stream};
use std::time::Instant;

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or("nats://127.0.0.1:4333".into());
    if let Some(name) = std::env::args().nth(2) {
        let js = jetstream::new(async_nats::connect(&url).await.unwrap());
        println!(
            "delete {name}: {:?}",
            js.delete_stream(&name).await.map(|_| ())
        );
        return;
    }
    let n: usize = 20_000;
    for streams in [1usize, 2, 4, 8] {
        let client = async_nats::connect(&url).await.unwrap();
        let js = jetstream::new(client);
        let run = uuid::Uuid::new_v4().simple().to_string();
        for s in 0..streams {
            js.get_or_create_stream(stream::Config {
                name: format!("EXP{}_{s}", &run[..8]),
                subjects: vec![format!("exp{}.{s}.>", &run[..8])],
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let t = Instant::now();
        let mut tasks = Vec::new();
        for s in 0..streams {
            let js = js.clone();
            let run = run.clone();
            tasks.push(tokio::spawn(async move {
                let per = n / streams;
                let mut done = 0;
                while done < per {
                    let mut acks = Vec::new();
                    for i in 0..1000.min(per - done) {
                        let p = Publish::build()
                            .payload(vec![b'x'; 400].into())
                            .message_id(format!("{run}-{s}-{}", done + i));
                        acks.push(
                            js.send_publish(format!("exp{}.{s}.e", &run[..8]), p)
                                .await
                                .unwrap(),
                        );
                    }
                    done += acks.len();
                    for a in acks {
                        a.await.unwrap();
                    }
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        println!(
            "{streams} streams: {:.0} msgs/s",
            n as f64 / t.elapsed().as_secs_f64()
        );
    }
}
