//! Fuzz target: every JSON request body the gateway takes (the first byte picks which), as
//! axum's `Json` extractor would parse it. Whatever parses must serialise again, and the
//! bodies the gateway checks further (task kinds, read ranges, subtenant names, object-store
//! locations, a host's report, a hardware plan) go through those checks too.
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
    match which % 23 {
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
        19 => drop(round_trip::<api::replication::NewHost>(body)),
        20 => {
            // A host's heartbeat: every field of a hostile host's report.
            if let Some(facts) = round_trip::<api::replication::HostFacts>(body) {
                let _ = facts.warning();
                for pool in &facts.pools {
                    let _ = cloudkeep_model::names::check("storage pool", &pool.name);
                }
            }
        }
        21 => {
            // A plan is checked alone and against a host, with no overflow or panic.
            if let Some(plan) = round_trip::<api::replication::PlanSpec>(body) {
                let _ = plan.check();
                let used = api::replication::PlanUse::default();
                let _ = used.admits(
                    &plan,
                    api::replication::ReplicaNeeds {
                        cpu: plan.cpu,
                        memory: plan.memory,
                    },
                );
                for s in &plan.storage {
                    let _ = used.admits_storage(&plan, &s.pool, s.bytes);
                }
            }
        }
        _ => drop(round_trip::<policy::PolicyDoc>(body)),
    }
});
