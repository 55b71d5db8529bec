//! Fuzz target: what the client reads from a gateway, which is a peer and may send anything
//! (the first byte picks which answer): every JSON response type, and the body of a
//! multi-range read cut into ranges, which must come out exactly as asked or be refused.
#![no_main]

use cloudkeep_api as api;
use cloudkeep_client::remote::RangeSplitter;
use cloudkeep_api::policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 16 {
        0 => drop(serde_json::from_slice::<api::ErrorBody>(body)),
        1 => drop(serde_json::from_slice::<api::Hello>(body)),
        2 => drop(serde_json::from_slice::<api::LoginResponse>(body)),
        3 => drop(serde_json::from_slice::<Vec<api::PackInfo>>(body)),
        4 => drop(serde_json::from_slice::<Vec<api::PointInfo>>(body)),
        5 => drop(serde_json::from_slice::<api::TaskInfo>(body)),
        6 => drop(serde_json::from_slice::<Vec<api::RepoInfo>>(body)),
        7 => drop(serde_json::from_slice::<api::PresenceResponse>(body)),
        8 => drop(serde_json::from_slice::<api::CheckReport>(body)),
        9 => drop(serde_json::from_slice::<api::PackCheck>(body)),
        10 => drop(serde_json::from_slice::<Vec<api::UsageRow>>(body)),
        11 => drop(serde_json::from_slice::<Vec<api::TenantView>>(body)),
        12 => drop(serde_json::from_slice::<Vec<api::RecycledPoint>>(body)),
        13 => drop(serde_json::from_slice::<Vec<policy::ComputerStatus>>(body)),
        14 => drop(serde_json::from_slice::<Vec<String>>(body)),
        _ => {
            // Range lengths from the first bytes, the answer's pieces from the rest.
            let Some((&count, rest)) = body.split_first() else {
                return;
            };
            let count = usize::from(count % 8);
            if rest.len() < count {
                return;
            }
            let (lens, answer) = rest.split_at(count);
            let lens: Vec<u64> = lens.iter().map(|&l| u64::from(l % 64)).collect();
            let mut splitter = RangeSplitter::new(lens.iter().copied());
            let mut ok = true;
            for piece in answer.chunks(7) {
                if splitter.push(piece).is_err() {
                    ok = false;
                    break;
                }
            }
            if ok && let Ok(parts) = splitter.finish() {
                assert_eq!(parts.len(), lens.len());
                let total: u64 = lens.iter().sum();
                assert_eq!(total as usize, answer.len());
                for (part, len) in parts.iter().zip(&lens) {
                    assert_eq!(part.len() as u64, *len);
                }
                assert_eq!(parts.concat(), answer);
            }
        }
    }
});
