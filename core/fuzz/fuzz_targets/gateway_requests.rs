//! Fuzz target: every JSON request body the gateway takes (the first byte picks which), as
//! axum's `Json` extractor would parse it. Whatever parses must serialise again, and the
//! bodies the gateway checks further (task kinds, read ranges, subtenant names, object-store
//! locations) go through those checks too.
#![no_main]

use cloudkeep_api as api;
use cloudkeep_api::policy;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: DeserializeOwned + Serialize>(body: &[u8]) -> Option<T> {
    let value: T = serde_json::from_slice(body).ok()?;
    let again = serde_json::to_vec(&value).expect("a parsed body serialises");
    let _: T = serde_json::from_slice(&again).expect("and parses back");
    Some(value)
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 20 {
        0 => drop(round_trip::<api::LoginRequest>(body)),
        1 => drop(round_trip::<api::PresenceRequest>(body)),
        2 => {
            if let Some(sub) = round_trip::<api::NewSubtenant>(body) {
                let _ = cloudkeep_model::names::check("subtenant", &sub.name);
            }
        }
        3 => drop(round_trip::<api::SubtenantChange>(body)),
        4 => {
            if let Some(task) = round_trip::<api::NewTask>(body) {
                let _ = api::TASK_KINDS.contains(&task.kind.as_str());
            }
        }
        5 => {
            if let Some(req) = round_trip::<api::ReadRequest>(body) {
                for r in &req.ranges {
                    let _ = cloudkeep_repo::pack::PackId::from_hex(&r.pack);
                    let _ = r.offset.checked_add(r.len);
                }
            }
        }
        6 => drop(round_trip::<api::RecycledRef>(body)),
        7 => drop(round_trip::<api::CheckRequest>(body)),
        8 => drop(round_trip::<api::NewTenant>(body)),
        9 => drop(round_trip::<api::QuotaSpec>(body)),
        10 => drop(round_trip::<api::TenantSettings>(body)),
        11 => drop(round_trip::<api::NewCloudRepo>(body)),
        12 => drop(round_trip::<api::MaintenanceMode>(body)),
        13 => drop(round_trip::<api::CertImport>(body)),
        14 => drop(round_trip::<policy::AgentReport>(body)),
        15 => {
            if let Some(access) = round_trip::<api::S3Access>(body) {
                let _ = access.target.check();
                let _ = access.target.describe();
            }
        }
        16 => drop(round_trip::<api::RepoEdit>(body)),
        17 => drop(round_trip::<api::MoveRequest>(body)),
        18 => drop(round_trip::<api::DrainRequest>(body)),
        _ => drop(round_trip::<policy::PolicyDoc>(body)),
    }
});
