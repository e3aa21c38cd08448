//! Every carrier's simulator on a local port, with adapters configured to match: what `orderhub
//! serve --carriers sim`, the tests and the benchmarks ship with.

use super::{SimHandle, SimSettings, spawn};
use crate::{Carrier, CarrierConfig, CarrierKind, HttpClient, Secret, adapter};
use std::collections::HashMap;
use std::sync::Arc;

/// A published EMS SM4 test key (base64): the simulator and the adapter must share one.
const EMS_KEY: &str = "TvaBgrhE46sft3nZlfe7xw==";

pub struct Fleet {
    pub carriers: Vec<Arc<dyn Carrier>>,
    pub handles: HashMap<CarrierKind, SimHandle>,
    pub urls: HashMap<CarrierKind, String>,
}

/// The credentials a simulator checks and its adapter signs with.
pub fn credentials(kind: CarrierKind) -> (CarrierConfig, SimSettings) {
    let secret = if kind == CarrierKind::Ems {
        EMS_KEY
    } else {
        "sim-secret"
    };
    let customer = match kind {
        CarrierKind::Cainiao => "ZTO",
        CarrierKind::Ems => "1100172843670",
        _ => "SIMCUST01",
    };
    let mut cfg = CarrierConfig::new(kind, "", "sim-app-key", secret, customer);
    cfg.access_token = Some(Secret::new("sim-token"));
    cfg.customer_password = Some(Secret::new("sim-password"));
    let mut s = SimSettings::new("sim-app-key", secret, customer);
    s.access_token = "sim-token".into();
    s.customer_password = "sim-password".into();
    (cfg, s)
}

/// Starts the seven simulators on 127.0.0.1 (ports chosen by the system).
pub async fn start() -> std::io::Result<Fleet> {
    let http = HttpClient::new();
    let mut fleet = Fleet {
        carriers: Vec::new(),
        handles: HashMap::new(),
        urls: HashMap::new(),
    };
    for kind in CarrierKind::ALL {
        let (mut cfg, settings) = credentials(kind);
        let (url, handle) = spawn(kind, settings).await?;
        cfg.base_url = url.clone();
        fleet.carriers.push(adapter(cfg, http.clone()));
        fleet.handles.insert(kind, handle);
        fleet.urls.insert(kind, url);
    }
    Ok(fleet)
}
