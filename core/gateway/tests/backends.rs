//! The storage conformance suite: one set of checks every pack store must pass, run against
//! each of them — a local folder and a cloud repository through a real gateway (in-process,
//! real TLS, SQLite); the object store of a later issue joins here. What the engine relies on:
//! packs stored whole and idempotently, ranges read exactly or refused (never short), missing
//! packs and objects told apart from failures, objects replaced atomically and listed sorted,
//! a set-aside that never calls an intact pack missing, and the engine's own round trip.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cloudkeep_api::TenantSettings;
use cloudkeep_client::remote::RemoteStore;
#[cfg(unix)]
use cloudkeep_gateway::storage::s3::S3Bucket;
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backend::{MetaKind, PackHealth, RepoBackend, StoreError};
use cloudkeep_repo::chunkset::ChunkSetFile;
use cloudkeep_repo::crypto::{ChunkId, KdfParams, Keyring};
use cloudkeep_repo::engine::backup::backup;
use cloudkeep_repo::engine::verify::verify;
use cloudkeep_repo::pack::{PackEntry, PackId};
use cloudkeep_tests::pseudo_random;

use crate::support::*;

/// The checks, on an empty store.
fn conformance(store: Arc<dyn RepoBackend>) {
    // Packs: stored whole, idempotent, listed with their length, read exactly.
    let a = pseudo_random(300_000, 1);
    let b = pseudo_random(5_000, 2);
    let (ia, ib) = (PackId::of(&a), PackId::of(&b));
    let blobs = [1u8, 2].map(|n| PackEntry {
        id: ChunkId([n; 32]),
        offset: 0,
        stored_len: 100,
        plain_len: 100,
    });
    store.put_pack(&ia, &a, &blobs).unwrap();
    store.put_pack(&ib, &b, &blobs[..1]).unwrap();
    store.put_pack(&ia, &a, &blobs).unwrap();
    let mut listed = store.list_packs().unwrap();
    listed.sort();
    let mut expected = vec![(ia, a.len() as u64), (ib, b.len() as u64)];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(store.pack_len(&ia).unwrap(), a.len() as u64);
    assert_eq!(store.read_range(&ia, 0, a.len() as u64).unwrap(), a);
    assert_eq!(store.read_range(&ia, 1000, 17).unwrap(), &a[1000..1017]);
    assert_eq!(store.read_range(&ib, 4990, 10).unwrap(), &b[4990..]);

    // Refusals are typed, never short reads or panics.
    let missing = PackId::of(b"no such pack");
    assert!(matches!(
        store.read_range(&missing, 0, 10),
        Err(StoreError::NotFound { .. })
    ));
    assert!(store.read_range(&ib, 4990, 20).is_err(), "past the end");
    assert!(store.read_range(&ib, u64::MAX - 5, 10).is_err());
    let got = store.read_ranges(&[(ia, 0, 8), (missing, 0, 8), (ib, 100, 8)]);
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap(), &a[..8]);
    assert!(got[1].is_err(), "a missing pack fails only its own range");
    assert_eq!(got[2].as_ref().unwrap(), &b[100..108]);

    // Set aside: an intact pack stays, a missing one is said to be missing.
    assert_eq!(store.set_aside(&ia).unwrap(), PackHealth::Intact);
    assert_eq!(store.read_range(&ia, 0, 8).unwrap(), &a[..8]);
    assert!(store.damaged_packs().unwrap().is_empty());

    // Objects of every kind: stored atomically, replaced, listed sorted, deleted idempotently.
    let (keyring, _) = Keyring::create_encrypted("pw", KdfParams::minimum(), "k").unwrap();
    store
        .put_meta(MetaKind::Keyring, "keyring", keyring.to_json().as_bytes())
        .unwrap();
    assert_eq!(
        store.get_meta(MetaKind::Keyring, "keyring").unwrap(),
        keyring.to_json().as_bytes()
    );
    let index = [b"index one".to_vec(), b"index two".to_vec()];
    let mut names = Vec::new();
    for bytes in &index {
        let name = blake3::hash(bytes).to_hex().to_string();
        store.put_meta(MetaKind::Index, &name, bytes).unwrap();
        names.push(name);
    }
    names.sort();
    assert_eq!(store.list_meta(MetaKind::Index).unwrap(), names);
    let set = ChunkSetFile::full(blobs.iter().map(|b| b.id).collect()).encode();
    let set_name = ChunkSetFile::name_of(&set);
    store.put_meta(MetaKind::ChunkSet, &set_name, &set).unwrap();
    assert_eq!(store.get_meta(MetaKind::ChunkSet, &set_name).unwrap(), set);
    store
        .put_meta(MetaKind::Lock, "shared-1", b"{\"a\":1}")
        .unwrap();
    store
        .put_meta(MetaKind::Lock, "shared-1", b"{\"a\":2}")
        .unwrap();
    assert_eq!(
        store.get_meta(MetaKind::Lock, "shared-1").unwrap(),
        b"{\"a\":2}"
    );
    assert_eq!(store.list_meta(MetaKind::Lock).unwrap(), ["shared-1"]);
    store.delete_meta(MetaKind::Lock, "shared-1").unwrap();
    store.delete_meta(MetaKind::Lock, "shared-1").unwrap();
    assert!(store.list_meta(MetaKind::Lock).unwrap().is_empty());
    assert!(matches!(
        store.get_meta(MetaKind::Index, &"0".repeat(64)),
        Err(StoreError::NotFoundMeta { .. })
    ));
    assert!(store.put_meta(MetaKind::Lock, "../escape", b"x").is_err());

    // Deleting packs (a gateway checks that no restore point needs them; none does here).
    store.delete_pack(&ib).unwrap();
    store.delete_pack(&ib).unwrap();
    assert_eq!(store.set_aside(&ib).unwrap(), PackHealth::Missing);
    for name in &names {
        store.delete_meta(MetaKind::Index, name).unwrap();
    }
    store.delete_meta(MetaKind::ChunkSet, &set_name).unwrap();
}

/// The engine through the store: backup, an incremental, restore byte-identical, verify.
fn round_trip(store: Arc<dyn RepoBackend>, scratch: &std::path::Path) {
    let source = scratch.join("src");
    std::fs::create_dir_all(source.join("deep")).unwrap();
    std::fs::write(source.join("a.bin"), pseudo_random(1_500_000, 3)).unwrap();
    std::fs::write(source.join("deep/b.txt"), "round trip\n".repeat(300)).unwrap();
    let repo = encrypted_repo(store);
    let first = backup(&repo, &backup_options(&source, None), &|_| {})
        .unwrap()
        .point;
    std::fs::write(source.join("c.bin"), pseudo_random(200_000, 4)).unwrap();
    let second = backup(&repo, &backup_options(&source, Some(first)), &|_| {})
        .unwrap()
        .point;
    let out = scratch.join("out");
    restore_to(&repo, &second, &out);
    let restored = cloudkeep_tests::restored_at(&out, &source);
    for name in ["a.bin", "deep/b.txt", "c.bin"] {
        assert_eq!(
            std::fs::read(restored.join(name)).unwrap(),
            std::fs::read(source.join(name)).unwrap(),
            "{name}"
        );
    }
    assert!(verify(&repo, 100).unwrap().is_healthy());
}

#[test]
fn a_folder_store_conforms() {
    let tmp = tempfile::tempdir().unwrap();
    let store: Arc<dyn RepoBackend> =
        Arc::new(FolderStore::open(tmp.path().join("checks")).unwrap());
    conformance(store);
    let fresh: Arc<dyn RepoBackend> = Arc::new(FolderStore::open(tmp.path().join("repo")).unwrap());
    round_trip(fresh, tmp.path());
}

// Garage runs from its Linux binary on the test host.
#[cfg(unix)]
#[test]
fn an_object_store_area_conforms() {
    let garage = cloudkeep_tests::garage::Garage::start(3);
    let access = garage_access(&garage, 1, "direct");
    let credentials = cloudkeep_gateway::storage::S3Credentials {
        access_key: access.access_key.clone(),
        secret_key: access.secret_key.clone().into(),
    };
    let bucket = Arc::new(S3Bucket::connect(&access.target, &credentials).unwrap());
    let probe = bucket.probe();
    assert!(probe.iter().all(|(_, r)| r.is_ok()), "{probe:?}");
    conformance(Arc::new(bucket.area("direct/q1".into())));
    let tmp = tempfile::tempdir().unwrap();
    round_trip(Arc::new(bucket.area("direct/q2".into())), tmp.path());
    block_reads(&bucket);
}

/// Multi-range reads go through the bucket's cache of whole blocks: ranges across block
/// boundaries and in the short last block read exactly, again from the cache, never past the
/// pack's end, never another area's pack nor a removed one, and from many threads at once.
#[cfg(unix)]
fn block_reads(bucket: &Arc<S3Bucket>) {
    use cloudkeep_gateway::storage::AreaStore;
    use cloudkeep_gateway::storage::s3::BLOCK;
    use cloudkeep_repo::backend::PackStore;
    let area = bucket.area("direct/q3".into());
    let other = bucket.area("direct/q4".into());
    let len = 2 * BLOCK + 12_345;
    let pack = pseudo_random(len as usize, 77);
    let id = PackId::of(&pack);
    area.put_pack(&id, &pack, &[]).unwrap();
    let ranges = [
        (id, 0, 10),
        (id, BLOCK - 5, 10),
        (id, 3, 2 * BLOCK),
        (id, len - 100, 100),
        (id, BLOCK, 0),
    ];
    let want: Vec<u8> = ranges
        .iter()
        .flat_map(|(_, o, l)| pack[*o as usize..(*o + *l) as usize].to_vec())
        .collect();
    let total = want.len() as u64;
    for _ in 0..2 {
        assert!(
            area.read_concat(&ranges, total).unwrap() == want,
            "read, then cached"
        );
    }
    assert!(matches!(
        area.read_concat(&[(id, len - 10, 20)], 20),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(matches!(
        area.read_concat(&[(id, len + BLOCK, 5)], 5),
        Err(StoreError::OutOfRange { .. })
    ));
    assert!(
        matches!(
            other.read_concat(&[(id, 0, 10)], 10),
            Err(StoreError::NotFound { .. })
        ),
        "another area's cached block is not this area's pack"
    );
    // A removed pack is not served from the cache.
    let gone = pseudo_random(BLOCK as usize + 10, 78);
    let gone_id = PackId::of(&gone);
    area.put_pack(&gone_id, &gone, &[]).unwrap();
    assert!(area.read_concat(&[(gone_id, 0, 10)], 10).unwrap() == gone[..10]);
    area.delete_pack(&gone_id).unwrap();
    assert!(
        matches!(
            area.read_concat(&[(gone_id, 0, 10)], 10),
            Err(StoreError::NotFound { .. })
        ),
        "a removed pack is read from the store, not the cache"
    );
    std::thread::scope(|scope| {
        for t in 0..6u64 {
            let (area, pack) = (&area, &pack);
            scope.spawn(move || {
                let offset = t * 150_000;
                let got = area.read_concat(&[(id, offset, BLOCK)], BLOCK).unwrap();
                assert!(got == pack[offset as usize..(offset + BLOCK) as usize]);
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cloud_repository_through_a_gateway_conforms() {
    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    conforms_through(tmp, gw_dir, gw).await;
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_storage_cloud_repository_through_a_gateway_conforms() {
    let garage = tokio::task::spawn_blocking(|| cloudkeep_tests::garage::Garage::start(3))
        .await
        .unwrap();
    let (tmp, gw_dir, gw) = gateway_with_s3_repo(&garage, "sp/main").await;
    conforms_through(tmp, gw_dir, gw).await;
    drop(garage);
}

/// The suite through a gateway whose repository "main" is whatever the caller made it.
async fn conforms_through(tmp: tempfile::TempDir, gw_dir: std::path::PathBuf, gw: Gateway) {
    add_tenant(
        &gw.db,
        "checks",
        "checks-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    add_tenant(
        &gw.db,
        "trip",
        "trip-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    let (checks, trip) = (
        remote_target(&gw, &gw_dir, "checks", "checks-password"),
        remote_target(&gw, &gw_dir, "trip", "trip-password"),
    );
    let scratch = tmp.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let store: Arc<dyn RepoBackend> = Arc::new(RemoteStore::connect(&checks).unwrap());
        conformance(store);
        let fresh: Arc<dyn RepoBackend> = Arc::new(RemoteStore::connect(&trip).unwrap());
        round_trip(fresh, &scratch);
    })
    .await
    .unwrap();
    gw.stop().await;
}
