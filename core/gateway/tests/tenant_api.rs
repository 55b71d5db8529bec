//! The tenant API of a real gateway (in-process, real TLS on loopback, SQLite): a repository
//! made by the real engine is uploaded object by object and pack by pack, committed, read
//! back; quotas, commit checks, insider protection, account state and tenant isolation are
//! enforced.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cloudkeep_api::TenantSettings;
use cloudkeep_repo::backend::PackStore;
use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::repo::Repository;
use cloudkeep_tests::pseudo_random;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_tenant_stores_and_reads_a_repository_within_its_limits() {
    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    let local = make_local_repo(tmp.path());
    let total: usize = local.packs.iter().map(|p| p.2.len()).sum();

    let protected = TenantSettings {
        keep_deleted_days: 7,
        ..TenantSettings::default()
    };
    let acme = add_tenant(&gw.db, "acme", "acme-password", 64 << 20, protected).await;
    add_tenant(
        &gw.db,
        "other",
        "other-password",
        64 << 20,
        TenantSettings::default(),
    )
    .await;
    add_tenant(
        &gw.db,
        "tiny",
        "tiny-password",
        3 << 19,
        TenantSettings::default(),
    )
    .await;

    // Login: wrong password, then maintenance mode, refuse with their codes.
    let (status, body) = Tenant::login(&gw, &gw_dir, "acme", "nope")
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    gw.db
        .set_maintenance(Some("disk swap until 10:00"))
        .await
        .unwrap();
    let (_, body) = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .err()
        .unwrap();
    assert_eq!(body["code"], "maintenance");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("disk swap until 10:00")
    );
    gw.db.set_maintenance(None).await.unwrap();
    let a = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    let b = Tenant::login(&gw, &gw_dir, "other", "other-password")
        .await
        .unwrap();

    let (status, repos) = a.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(repos[0]["name"], "Cloud");
    assert_eq!(repos[0]["free_bytes"], 64 << 20);

    // Writes belong to a task.
    let (_, p0) = (0, &local.packs[0]);
    let (status, body) = a.upload_pack("Cloud", &p0.0, &p0.1, &p0.2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["message"].as_str().unwrap().contains("task"), "{body}");
    assert_eq!(a.start_task().await.0, StatusCode::OK);

    // Upload everything but the last pack: the commit is refused, nothing becomes visible.
    assert_eq!(
        a.put_object("Cloud", "keyring", "keyring", local.keyring.clone())
            .await
            .0,
        StatusCode::OK
    );
    let (status, body) = a
        .put_object("Cloud", "keyring", "keyring", b"{not json".to_vec())
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request"))
    );
    for (name, bytes) in local.index.iter().chain(&local.sets) {
        let kind = if local.index.iter().any(|(n, _)| n == name) {
            "index"
        } else {
            "sets"
        };
        assert_eq!(
            a.put_object("Cloud", kind, name, bytes.clone()).await.0,
            StatusCode::OK,
            "{kind} {name}"
        );
    }
    let (status, _) = a
        .put_object("Cloud", "sets", &"0".repeat(64), local.sets[0].1.clone())
        .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "a set must be named by its hash"
    );
    let (last, first_packs) = local.packs.split_last().unwrap();
    for (id, chunks, bytes) in first_packs {
        assert_eq!(
            a.upload_pack("Cloud", id, chunks, bytes).await.0,
            StatusCode::OK
        );
    }
    let (point_name, point_bytes) = &local.points[0];
    let commit = format!("/v1/repos/Cloud/points/{point_name}");
    let (status, out) = a
        .send(
            reqwest::Method::PUT,
            &commit,
            Some(point_bytes.clone()),
            &[],
        )
        .await;
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("not stored"));
    assert_eq!(
        a.json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
            .await
            .1,
        json!([])
    );

    // A damaged upload is refused and stores nothing.
    let mut damaged = last.2.clone();
    damaged[100] ^= 1;
    let (status, body) = a.upload_pack("Cloud", &last.0, &last.1, &damaged).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("do not match its id")
    );
    let (_, present) = a
        .json(
            reqwest::Method::POST,
            "/v1/repos/Cloud/chunks/present",
            Some(json!({"ids": [hex::encode(last.1[0])]})),
        )
        .await;
    assert_eq!(present["present"], json!([false]));

    // The last pack, then the commit succeeds; chunk presence and range reads work.
    assert_eq!(
        a.upload_pack("Cloud", &last.0, &last.1, &last.2).await.0,
        StatusCode::OK
    );
    assert_eq!(
        a.upload_pack("Cloud", &last.0, &last.1, &last.2).await.0,
        StatusCode::OK,
        "again: harmless"
    );
    assert_eq!(
        a.send(
            reqwest::Method::PUT,
            &commit,
            Some(point_bytes.clone()),
            &[]
        )
        .await
        .0,
        StatusCode::OK
    );
    let (_, points) = a
        .json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
        .await;
    assert_eq!(points[0]["name"], point_name.as_str());
    let (_, present) = a
        .json(
            reqwest::Method::POST,
            "/v1/repos/Cloud/chunks/present",
            Some(json!({"ids": [hex::encode(last.1[0]), "ff".repeat(32)]})),
        )
        .await;
    assert_eq!(present["present"], json!([true, false]));
    let (status, range) = a
        .send(
            reqwest::Method::GET,
            &format!("/v1/repos/Cloud/packs/{}", last.0),
            None,
            &[("range", "bytes=10-19".into())],
        )
        .await;
    assert_eq!(
        (status, range.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &last.2[10..20])
    );
    // Several ranges of several packs in one request: their bytes end to end, in the order
    // asked; a missing pack or a range outside its pack refuses the request, naming it.
    let first = &local.packs[0];
    let reads = json!({"ranges": [
        {"pack": last.0, "offset": 10, "len": 10},
        {"pack": first.0, "offset": 0, "len": 5},
        {"pack": last.0, "offset": 3, "len": 4},
    ]});
    let (status, got) = a
        .send(
            reqwest::Method::POST,
            "/v1/repos/Cloud/reads",
            Some(serde_json::to_vec(&reads).unwrap()),
            &[("content-type", "application/json".into())],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        got,
        [&last.2[10..20], &first.2[0..5], &last.2[3..7]].concat()
    );
    let missing = "ee".repeat(32);
    for (ranges, want, says) in [
        (
            json!([{"pack": last.0, "offset": 0, "len": 1}, {"pack": missing, "offset": 0, "len": 1}]),
            StatusCode::NOT_FOUND,
            format!("pack {missing} is not stored"),
        ),
        (
            json!([{"pack": last.0, "offset": last.2.len() as u64 - 2, "len": 3}]),
            StatusCode::BAD_REQUEST,
            "outside the pack's".to_owned(),
        ),
        (
            json!([]),
            StatusCode::BAD_REQUEST,
            "1 to 4096 ranges".to_owned(),
        ),
    ] {
        let (status, body) = a
            .json(
                reqwest::Method::POST,
                "/v1/repos/Cloud/reads",
                Some(json!({ "ranges": ranges })),
            )
            .await;
        assert_eq!(status, want, "{body}");
        assert!(body["message"].as_str().unwrap().contains(&says), "{body}");
    }
    let (_, got) = a.send(reqwest::Method::GET, &commit, None, &[]).await;
    assert_eq!(&got, point_bytes);
    let used = a.json(reqwest::Method::GET, "/v1/repos", None).await.1[0]["used_bytes"]
        .as_i64()
        .unwrap();
    assert!(
        used as usize >= total,
        "packs count against the quota: {used}"
    );

    // Tenant isolation: the other tenant sees none of it, even by name.
    for path in [
        format!("/v1/repos/Cloud/packs/{}", last.0),
        commit.clone(),
        "/v1/repos/Cloud/objects/keyring/keyring".into(),
    ] {
        let (status, _) = b.send(reqwest::Method::GET, &path, None, &[]).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }
    let (status, _) = b
        .json(
            reqwest::Method::POST,
            "/v1/repos/Cloud/reads",
            Some(json!({"ranges": [{"pack": last.0, "offset": 0, "len": 1}]})),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another tenant's pack is not found"
    );
    assert_eq!(
        b.json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
            .await
            .1,
        json!([])
    );

    // The quota: the tiny tenant's two concurrent uploads cannot both fit.
    let t = Tenant::login(&gw, &gw_dir, "tiny", "tiny-password")
        .await
        .unwrap();
    assert_eq!(t.start_task().await.0, StatusCode::OK);
    // Two 1 MiB uploads against a 1.5 MiB quota (the gateway sees opaque bytes: any will do).
    let (p1, p2) = (pseudo_random(1 << 20, 77), pseudo_random(1 << 20, 78));
    let (id1, id2) = (
        blake3::hash(&p1).to_hex().to_string(),
        blake3::hash(&p2).to_hex().to_string(),
    );
    let (r1, r2) = tokio::join!(
        t.upload_pack("Cloud", &id1, &[[1; 32]], &p1),
        t.upload_pack("Cloud", &id2, &[[2; 32]], &p2)
    );
    let codes: Vec<Option<&str>> = vec![r1.1["code"].as_str(), r2.1["code"].as_str()];
    assert!(
        codes.contains(&Some("quota_exceeded")) && codes.contains(&None),
        "exactly one fits: {codes:?}"
    );
    assert_eq!(
        t.json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
            .await
            .1,
        json!([]),
        "a refused upload leaves no restore point"
    );
    let (_, tiny_repos) = t.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(tiny_repos[0]["used_bytes"], 1 << 20);
    // A large upload refused before its body is read still gets its reason, not a reset
    // connection, over HTTP/1.1 as the remote store talks, three times on one client.
    let t1 = t.with_client(pinned_client(&gw_dir, Some(b"http/1.1")));
    let big = pseudo_random(24 << 20, 79);
    let big_id = blake3::hash(&big).to_hex().to_string();
    for _ in 0..3 {
        let (status, body) = t1.upload_pack("Cloud", &big_id, &[[3; 32]], &big).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")),
            "{body}"
        );
    }

    // Insider protection: a deleted point leaves the tenant's view for the recycle bin.
    assert_eq!(
        a.send(reqwest::Method::DELETE, &commit, None, &[]).await.0,
        StatusCode::OK
    );
    assert_eq!(
        a.json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
            .await
            .1,
        json!([])
    );
    let quota = &gw.db.quotas_of(acme).await.unwrap()[0];
    assert_eq!(gw.db.points(quota.id, true).await.unwrap().len(), 1);
    assert!(quota.recycle_bytes > 0);

    // The SP sees it in the recycle bin, can give it back, and purge it.
    let cert = cloudkeep_gateway::tls::CertStore::open(&gw_dir)
        .unwrap()
        .info()
        .unwrap();
    let mut admin = cloudkeep_client::SpClient::new(&gw.addr, &cert.fingerprint).unwrap();
    admin.login("admin", "admin-password").await.unwrap();
    let bin = admin.recycle_bin().await.unwrap();
    assert_eq!(bin.len(), 1);
    assert_eq!(
        (bin[0].tenant.as_str(), bin[0].repo.as_str()),
        ("acme", "Cloud")
    );
    assert_eq!(bin[0].purge_after_ms - bin[0].deleted_ms, 7 * 86_400_000);
    let reference = cloudkeep_api::RecycledRef {
        tenant: "acme".into(),
        repo: "Cloud".into(),
        point: point_name.clone(),
    };
    admin.recycle_restore(&reference).await.unwrap();
    let (_, points) = a
        .json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
        .await;
    assert_eq!(points[0]["name"], point_name.as_str(), "given back");
    assert_eq!(gw.db.quotas_of(acme).await.unwrap()[0].recycle_bytes, 0);
    assert_eq!(
        a.send(reqwest::Method::DELETE, &commit, None, &[]).await.0,
        StatusCode::OK
    );
    admin.recycle_purge(&reference).await.unwrap();
    assert!(admin.recycle_bin().await.unwrap().is_empty());
    assert_eq!(gw.db.quotas_of(acme).await.unwrap()[0].recycle_bytes, 0);
    let usage = admin.usage().await.unwrap();
    assert!(usage.iter().any(|u| u.tenant == "acme" && u.points == 0));

    // Maintenance refuses new sessions but lets running ones finish their work.
    gw.db.set_maintenance(Some("short break")).await.unwrap();
    assert_eq!(
        a.json(reqwest::Method::GET, "/v1/repos", None).await.0,
        StatusCode::OK
    );
    gw.db.set_maintenance(None).await.unwrap();

    // Disabling the account or an expired lease stop the next request.
    let mut settings = gw.db.tenant(acme).await.unwrap().settings;
    settings.lease_until_ms = Some(1_000);
    gw.db.update_tenant(acme, &settings).await.unwrap();
    let (status, body) = a.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("lease_expired"))
    );
    settings.lease_until_ms = None;
    settings.enabled = false;
    gw.db.update_tenant(acme, &settings).await.unwrap();
    let (_, body) = a.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(body["code"], "account_disabled");

    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tasks_and_bandwidth_are_limited_per_tenant() {
    let (tmp, gw_dir, mut gw) = gateway_with_repo().await;
    let limit: i64 = 4 << 20;
    let settings = TenantSettings {
        max_tasks: 1,
        bandwidth_bps: limit,
        ..TenantSettings::default()
    };
    let acme = add_tenant(&gw.db, "acme", "acme-password", 1 << 30, settings).await;
    add_subtenant(&gw.db, acme, "laptop", "sub-password", -1).await;

    // One task at a time for the tenant and its subtenants together.
    let first = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    let second = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    let sub = Tenant::login(&gw, &gw_dir, "acme/laptop", "sub-password")
        .await
        .unwrap();
    assert_eq!(first.start_task().await.0, StatusCode::OK);
    let (status, body) = second.start_task().await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("too_many_tasks"))
    );
    assert!(
        body["message"].as_str().unwrap().contains("retry"),
        "{body}"
    );
    assert_eq!(
        sub.start_task().await.1["code"],
        "too_many_tasks",
        "a subtenant's task counts for its tenant"
    );
    let task = first.task.lock().unwrap().clone().unwrap();
    assert_eq!(
        first
            .send(
                reqwest::Method::DELETE,
                &format!("/v1/tasks/{task}"),
                None,
                &[]
            )
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(second.start_task().await.0, StatusCode::OK, "free again");

    // Bandwidth: an 8 MiB upload and its read-back at a 4 MiB/s limit.
    let pack = pseudo_random(8 << 20, 5);
    let id = blake3::hash(&pack).to_hex().to_string();
    let started = std::time::Instant::now();
    assert_eq!(
        second.upload_pack("Cloud", &id, &[[3; 32]], &pack).await.0,
        StatusCode::OK
    );
    let up = pack.len() as f64 / started.elapsed().as_secs_f64();
    let started = std::time::Instant::now();
    let (status, back) = second
        .send(
            reqwest::Method::GET,
            &format!("/v1/repos/Cloud/packs/{id}"),
            None,
            &[],
        )
        .await;
    let down = back.len() as f64 / started.elapsed().as_secs_f64();
    assert_eq!((status, back.len()), (StatusCode::OK, pack.len()));
    println!(
        "bandwidth limit {:.2} MiB/s: upload {:.2} MiB/s ({:+.1} %), download {:.2} MiB/s ({:+.1} %)",
        limit as f64 / 1048576.0,
        up / 1048576.0,
        (up / limit as f64 - 1.0) * 100.0,
        down / 1048576.0,
        (down / limit as f64 - 1.0) * 100.0
    );
    // Never above the limit (a loaded machine only slows transfers down); well above half of it
    // (the limiter does not hold back more than it must, even on a busy machine).
    for rate in [up, down] {
        let ratio = rate / limit as f64;
        assert!(
            (0.6..=1.1).contains(&ratio),
            "at most 10 % above the limit and not far below it: {ratio:.3}"
        );
    }

    // Size limits and malformed calls get JSON errors.
    let huge = json!({"ids": vec!["ab".repeat(32); 20_000]});
    let (status, body) = second
        .json(
            reqwest::Method::POST,
            "/v1/repos/Cloud/chunks/present",
            Some(huge),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{body}"
    );
    let many = json!({"ids": vec!["ab".repeat(32); 10_001]});
    let (_, body) = second
        .json(
            reqwest::Method::POST,
            "/v1/repos/Cloud/chunks/present",
            Some(many),
        )
        .await;
    assert!(
        body["message"].as_str().unwrap().contains("10000"),
        "{body}"
    );
    let (_, body) = second.json(reqwest::Method::PATCH, "/v1/repos", None).await;
    assert_eq!(body["code"], "bad_request");
    let (_, body) = second
        .json(reqwest::Method::GET, "/v1/nothing-here", None)
        .await;
    assert_eq!(body["code"], "not_found");

    // Five failed logins ban the address; sessions already open keep working.
    for _ in 0..5 {
        let (_, body) = Tenant::login(&gw, &gw_dir, "acme", "wrong")
            .await
            .err()
            .unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
    let (status, body) = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .err()
        .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::TOO_MANY_REQUESTS, Some("banned"))
    );
    assert_eq!(
        second.json(reqwest::Method::GET, "/v1/repos", None).await.0,
        StatusCode::OK
    );

    // Shutdown while an upload is in flight: the gateway lets it finish, then stops.
    let slow = pseudo_random(6 << 20, 6);
    let slow_id = blake3::hash(&slow).to_hex().to_string();
    let upload = {
        let (id, body) = (slow_id.clone(), slow.clone());
        async move { second.upload_pack("Cloud", &id, &[[4; 32]], &body).await }
    };
    let stop = gw.stop.take().unwrap();
    let (result, ()) = tokio::join!(upload, async move {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        stop.send(()).unwrap();
    });
    assert_eq!(result.0, StatusCode::OK, "{}", result.1);
    gw.task.await.unwrap();
    let quota = &gw.db.quotas_of(acme).await.unwrap()[0];
    assert!(gw.db.pack_size(quota.id, &slow_id).await.unwrap().is_some());
    let leftovers = std::fs::read_dir(tmp.path().join(format!("storage/q{}/tmp", quota.id)))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "no partial upload left behind");
}

/// Uploads a whole local repository (objects, packs) and commits its points.
/// Every route against tenant A's objects, tried by another tenant, another tenant's
/// subtenant, A's own subtenant and a caller without a session: `not_found` or `unauthorized`,
/// never A's data; afterwards A's data is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_account_reaches_another_accounts_data() {
    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    let local = make_local_repo(tmp.path());
    let acme = add_tenant(
        &gw.db,
        "acme",
        "acme-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    let other = add_tenant(
        &gw.db,
        "other",
        "other-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    for (parent, name) in [(acme, "laptop"), (other, "desk")] {
        add_subtenant(&gw.db, parent, name, "sub-password", -1).await;
    }
    let a = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    upload_all(&a, &local).await;

    let (point, _) = &local.points[0];
    let (index, _) = &local.index[0];
    let (set, _) = &local.sets[0];
    let (pack, chunks, _) = &local.packs[0];
    let reads = [
        (
            reqwest::Method::GET,
            format!("/v1/repos/Cloud/points/{point}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/repos/Cloud/points/{point}"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/repos/Cloud/packs/{pack}"),
        ),
        (
            reqwest::Method::GET,
            "/v1/repos/Cloud/objects/keyring/keyring".to_owned(),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/repos/Cloud/objects/index/{index}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/repos/Cloud/objects/index/{index}"),
        ),
        (
            reqwest::Method::GET,
            format!("/v1/repos/Cloud/objects/sets/{set}"),
        ),
        (
            reqwest::Method::DELETE,
            format!("/v1/repos/Cloud/objects/sets/{set}"),
        ),
        (reqwest::Method::GET, "/v1/repos/Archive/points".to_owned()),
        (reqwest::Method::DELETE, "/v1/subtenants/laptop".to_owned()),
    ];
    let intruders = [
        Tenant::login(&gw, &gw_dir, "other", "other-password")
            .await
            .unwrap(),
        Tenant::login(&gw, &gw_dir, "other/desk", "sub-password")
            .await
            .unwrap(),
        Tenant::login(&gw, &gw_dir, "acme/laptop", "sub-password")
            .await
            .unwrap(),
    ];
    let who = ["other", "other/desk", "acme/laptop"];
    for (intruder, name) in intruders.iter().zip(who) {
        // With a task of their own, so that writes are refused for isolation, not for the
        // missing task.
        assert!(intruder.start_task().await.0.is_success());
        for (method, path) in &reads {
            let (status, body) = intruder.send(method.clone(), path, None, &[]).await;
            let code = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v["code"].as_str().map(str::to_owned));
            assert!(
                matches!(code.as_deref(), Some("not_found" | "unauthorized")),
                "{name} {method} {path}: {status} {}",
                String::from_utf8_lossy(&body)
            );
        }
        for list in [
            "/v1/repos/Cloud/points",
            "/v1/repos/Cloud/packs",
            "/v1/repos/Cloud/objects/index",
            "/v1/repos/Cloud/objects/sets",
        ] {
            let (status, body) = intruder.json(reqwest::Method::GET, list, None).await;
            assert_eq!(
                (status, body),
                (StatusCode::OK, json!([])),
                "{name} sees nothing in {list}"
            );
        }
        let (_, present) = intruder
            .json(
                reqwest::Method::POST,
                "/v1/repos/Cloud/chunks/present",
                Some(json!({"ids": chunks.iter().map(hex::encode).collect::<Vec<_>>()})),
            )
            .await;
        assert!(
            present["present"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p == false),
            "{name}: {present}"
        );
        let (_, subs) = intruder
            .json(reqwest::Method::GET, "/v1/subtenants", None)
            .await;
        assert!(
            subs.as_array()
                .is_none_or(|s| s.iter().all(|t| !t["tenant"]["login"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("acme/"))),
            "{name} sees no subtenant of acme: {subs}"
        );
    }
    // Without a session: unauthorized everywhere.
    let anonymous = Tenant {
        http: a.http.clone(),
        base: a.base.clone(),
        token: "0".repeat(64),
        task: std::sync::Mutex::new(None),
    };
    for (method, path) in &reads {
        let (_, body) = anonymous.json(method.clone(), path, None).await;
        assert_eq!(body["code"], "unauthorized", "{method} {path}");
    }

    // A's data is all still there.
    let (status, got) = a
        .send(
            reqwest::Method::GET,
            &format!("/v1/repos/Cloud/points/{point}"),
            None,
            &[],
        )
        .await;
    assert_eq!((status, &got), (StatusCode::OK, &local.points[0].1));
    let (_, subs) = a.json(reqwest::Method::GET, "/v1/subtenants", None).await;
    assert_eq!(subs[0]["tenant"]["login"], "acme/laptop");
    assert_eq!(
        a.json(reqwest::Method::GET, "/v1/repos/Cloud/objects/index", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        local.index.len()
    );

    gw.stop().await;
}

/// A tenant manages its subtenants within its own quota; disabled accounts cannot log in;
/// recycled points are purged once their protection runs out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subtenants_are_carved_from_the_tenant_and_the_recycle_bin_expires() {
    let (_tmp, gw_dir, gw) = gateway_with_repo().await;
    let protected = TenantSettings {
        keep_deleted_days: 3,
        ..TenantSettings::default()
    };
    let acme = add_tenant(&gw.db, "acme", "acme-password", 10 << 20, protected).await;
    let a = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();

    let sub = |name: &str, bytes: i64| json!({"name": name, "password": "sub-password", "repo": "Cloud", "quota_bytes": bytes});
    let (status, body) = a
        .json(
            reqwest::Method::POST,
            "/v1/subtenants",
            Some(sub("pc-1", 6 << 20)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tenant"]["login"], "acme/pc-1");
    let (status, body) = a
        .json(
            reqwest::Method::POST,
            "/v1/subtenants",
            Some(sub("pc-2", 6 << 20)),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("quota_exceeded")),
        "only 4 MiB are left: {body}"
    );
    assert!(
        body["message"].as_str().unwrap().contains("4.0 MiB"),
        "{body}"
    );
    let (status, _) = a
        .json(
            reqwest::Method::POST,
            "/v1/subtenants",
            Some(sub("pc-2", 4 << 20)),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let pc1 = Tenant::login(&gw, &gw_dir, "acme/pc-1", "sub-password")
        .await
        .unwrap();
    let (_, repos) = pc1.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(repos[0]["quota_bytes"], 6 << 20);
    let (_, body) = pc1
        .json(
            reqwest::Method::POST,
            "/v1/subtenants",
            Some(sub("nested", 1)),
        )
        .await;
    assert_eq!(
        body["code"], "unauthorized",
        "a subtenant manages no subtenants"
    );
    assert_eq!(
        a.json(reqwest::Method::DELETE, "/v1/subtenants/pc-2", None)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        a.json(reqwest::Method::GET, "/v1/subtenants", None)
            .await
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // A disabled tenant cannot log in, and neither can its subtenants.
    let mut settings = gw.db.tenant(acme).await.unwrap().settings;
    settings.enabled = false;
    gw.db.update_tenant(acme, &settings).await.unwrap();
    for (user, pw) in [("acme", "acme-password"), ("acme/pc-1", "sub-password")] {
        let (status, body) = Tenant::login(&gw, &gw_dir, user, pw).await.err().unwrap();
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("account_disabled")),
            "{user}"
        );
    }
    settings.enabled = true;
    settings.lease_until_ms = Some(1_000);
    gw.db.update_tenant(acme, &settings).await.unwrap();
    let (_, body) = Tenant::login(&gw, &gw_dir, "acme/pc-1", "sub-password")
        .await
        .err()
        .unwrap();
    assert_eq!(
        body["code"], "lease_expired",
        "a subtenant follows its tenant's lease"
    );
    settings.lease_until_ms = None;
    gw.db.update_tenant(acme, &settings).await.unwrap();

    // A recycled point stays for its protection days, then goes.
    let quota = gw.db.quotas_of(acme).await.unwrap().remove(0);
    gw.db
        .add_point(quota.id, "p1", 1, "s1", 100, None)
        .await
        .unwrap();
    gw.db.reserve(quota.id, 100).await.unwrap();
    gw.db.recycle_point(quota.id, "p1").await.unwrap();
    gw.db.shift_to_recycle(quota.id, 100).await.unwrap();
    let state = gateway_state(&gw, &gw_dir, "test");
    assert_eq!(
        cloudkeep_gateway::recycle::purge_expired(&state)
            .await
            .unwrap(),
        0,
        "3 days of protection"
    );
    settings.keep_deleted_days = 0;
    gw.db.update_tenant(acme, &settings).await.unwrap();
    assert_eq!(
        cloudkeep_gateway::recycle::purge_expired(&state)
            .await
            .unwrap(),
        1,
        "protection over"
    );
    assert!(gw.db.recycle_bin().await.unwrap().is_empty());
    assert_eq!(gw.db.quotas_of(acme).await.unwrap()[0].recycle_bytes, 0);

    gw.stop().await;
}

/// The engine backs up into a cloud repository on the gateway, and a "fresh machine" (a new
/// connection with only the credentials and the encryption password) restores it; the next
/// backup stores almost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_engine_backs_up_and_restores_through_the_gateway() {
    use cloudkeep_client::remote::RemoteStore;
    use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions, restore};
    use cloudkeep_repo::engine::verify::verify;
    use cloudkeep_repo::repo::Unlock;

    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    add_tenant(
        &gw.db,
        "acme",
        "acme-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    let target = remote_target(&gw, &gw_dir, "acme", "acme-password");
    let root = tmp.path().to_path_buf();
    tokio::task::spawn_blocking(move || {
        let source = root.join("src");
        std::fs::create_dir_all(source.join("docs/deep")).unwrap();
        for i in 0..3 {
            std::fs::write(
                source.join(format!("f{i}.bin")),
                pseudo_random(1_500_000, i + 10),
            )
            .unwrap();
        }
        std::fs::write(source.join("docs/deep/notes.txt"), "ship it\n".repeat(500)).unwrap();
        let options = |parent| BackupOptions {
            sources: vec![source.clone()],
            disks: vec![],
            excludes: vec![],
            one_file_system: false,
            compression: Compression::Default,
            host: "pc".into(),
            job: "docs".into(),
            parent,
            cancel: Default::default(),
        };
        {
            let store = Arc::new(RemoteStore::connect(&target).unwrap());
            let repo = encrypted_repo(store);
            let done = backup(&repo, &options(None), &|_| {}).unwrap();
            assert!(done.warnings.is_empty(), "{:?}", done.warnings);
        }

        // A fresh machine: only the gateway, the credentials and the password.
        let store = Arc::new(RemoteStore::connect(&target).unwrap());
        let repo = Repository::open(store.clone(), Unlock::Password("pw")).unwrap();
        let point = repo.find_point("latest").unwrap();

        // Ranges of several packs go in one request; a missing pack fails only its own range.
        let packs = store.list_packs().unwrap();
        let (pack, len) = packs[0];
        let gone = cloudkeep_repo::pack::PackId([9; 32]);
        let got = store.read_ranges(&[(pack, 0, 16), (gone, 0, 16), (pack, len - 8, 8)]);
        assert_eq!(got.len(), 3);
        assert_eq!(
            got[0].as_ref().unwrap(),
            &store.read_range(&pack, 0, 16).unwrap()
        );
        assert!(got[1].is_err(), "{:?}", got[1]);
        assert_eq!(
            got[2].as_ref().unwrap(),
            &store.read_range(&pack, len - 8, 8).unwrap()
        );
        let out = root.join("restored");
        restore(
            &repo,
            &point,
            &RestoreOptions {
                destination: Destination::Folder(out.clone()),
                paths: vec![source.display().to_string()],
                conflict: Conflict::Skip,
                cancel: Default::default(),
            },
            &|_| {},
        )
        .unwrap();
        for i in 0..3 {
            assert_eq!(
                std::fs::read(out.join(format!("src/f{i}.bin"))).unwrap(),
                pseudo_random(1_500_000, i + 10)
            );
        }
        assert_eq!(
            std::fs::read_to_string(out.join("src/docs/deep/notes.txt")).unwrap(),
            "ship it\n".repeat(500)
        );
        assert!(verify(&repo, 100).unwrap().is_healthy());

        let second = backup(&repo, &options(Some(point)), &|_| {}).unwrap();
        let stats = second.point.manifest.stats;
        assert_eq!(
            stats.files_read, 0,
            "unchanged files are not read again: {stats:?}"
        );
        assert!(
            stats.new_stored_bytes < 64 << 10,
            "almost nothing is sent: {stats:?}"
        );
        assert_eq!(repo.list_points().unwrap().len(), 2);
    })
    .await
    .unwrap();
    gw.stop().await;
}

/// A point whose chunk set is a delta over a committed point's set is checked for the chunks
/// the delta adds: without the new pack it is refused, with it accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delta_point_is_checked_for_the_chunks_it_adds() {
    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    add_tenant(
        &gw.db,
        "acme",
        "acme-password",
        64 << 20,
        TenantSettings::default(),
    )
    .await;
    let source = tmp.path().join("many");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..100u64 {
        std::fs::write(source.join(format!("f{i}")), pseudo_random(40_000, 100 + i)).unwrap();
    }
    let store = Arc::new(FolderStore::open(tmp.path().join("delta-repo")).unwrap());
    let repo = new_repo(&store);
    backup_once(&repo, &source, None);
    let first = snapshot(&store, &repo);
    std::fs::write(source.join("f3"), pseudo_random(40_000, 999)).unwrap();
    let parent = repo.latest_point("docs", "pc").unwrap();
    backup_once(&repo, &source, parent);
    let both = snapshot(&store, &repo);
    let new = |all: &[(String, Vec<u8>)], old: &[(String, Vec<u8>)]| -> Vec<(String, Vec<u8>)> {
        all.iter()
            .filter(|(n, _)| !old.iter().any(|(o, _)| o == n))
            .cloned()
            .collect()
    };
    let (new_sets, new_points) = (
        new(&both.sets, &first.sets),
        new(&both.points, &first.points),
    );
    assert_eq!(new_points.len(), 1);
    let set = cloudkeep_repo::chunkset::ChunkSetFile::decode(&new_sets[0].1).unwrap();
    assert!(
        set.base.is_some(),
        "the second set is a delta: {} sets, {} added",
        new_sets.len(),
        set.added.len()
    );
    let new_packs: Vec<_> = both
        .packs
        .iter()
        .filter(|(id, _, _)| !first.packs.iter().any(|(o, _, _)| o == id))
        .cloned()
        .collect();
    assert!(!new_packs.is_empty());

    let t = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    upload_all(&t, &first).await;
    for (name, bytes) in new(&both.index, &first.index) {
        assert_eq!(
            t.put_object("Cloud", "index", &name, bytes).await.0,
            StatusCode::OK
        );
    }
    for (name, bytes) in &new_sets {
        assert_eq!(
            t.put_object("Cloud", "sets", name, bytes.clone()).await.0,
            StatusCode::OK
        );
    }
    let commit = format!("/v1/repos/Cloud/points/{}", new_points[0].0);
    let (status, out) = t
        .send(
            reqwest::Method::PUT,
            &commit,
            Some(new_points[0].1.clone()),
            &[],
        )
        .await;
    let body: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("not stored"),
        "{body}"
    );
    for (id, chunks, bytes) in &new_packs {
        assert_eq!(
            t.upload_pack("Cloud", id, chunks, bytes).await.0,
            StatusCode::OK
        );
    }
    let (status, out) = t
        .send(
            reqwest::Method::PUT,
            &commit,
            Some(new_points[0].1.clone()),
            &[],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&out));
    let (_, points) = t
        .json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
        .await;
    assert_eq!(points.as_array().unwrap().len(), 2);
    gw.stop().await;
}

/// An ended lease stops backups but not restores, for the grace period the SP sets; after it,
/// the account is refused. Reads (repositories, points, packs) and the lock objects a restore
/// takes work; packs, index files, points and deletions are refused with what still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ended_lease_allows_restores_not_backups_for_the_grace_period() {
    let (tmp, gw_dir, gw) = gateway_with_repo().await;
    let local = make_local_repo(tmp.path());
    let acme = add_tenant(
        &gw.db,
        "acme",
        "acme-password",
        1 << 30,
        TenantSettings::default(),
    )
    .await;
    let t = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    upload_all(&t, &local).await;

    let day = 86_400_000;
    let ended = cloudkeep_model::clock::now_ms() - day;
    let mut settings = gw.db.tenant(acme).await.unwrap().settings;
    settings.lease_until_ms = Some(ended);
    gw.db.update_tenant(acme, &settings).await.unwrap();

    // A new session still opens; what a restore reads is there.
    let t = Tenant::login(&gw, &gw_dir, "acme", "acme-password")
        .await
        .unwrap();
    let (status, repos) = t.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        repos[0]["restore_until_ms"],
        ended + 30 * day,
        "the default grace: 30 days"
    );
    let (status, points) = t
        .json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
        .await;
    assert_eq!(
        (status, points.as_array().unwrap().len()),
        (StatusCode::OK, local.points.len())
    );
    let (pack, _, bytes) = &local.packs[0];
    let (status, read) = t
        .send(
            reqwest::Method::GET,
            &format!("/v1/repos/Cloud/packs/{pack}"),
            None,
            &[],
        )
        .await;
    assert_eq!((status, read.len()), (StatusCode::OK, bytes.len()));
    assert_eq!(t.start_task().await.0, StatusCode::OK);
    assert_eq!(
        t.put_object("Cloud", "locks", "restore-lock", b"shared".to_vec())
            .await
            .0,
        StatusCode::OK,
        "a restore takes its lock"
    );

    // Backups and deletions are refused, saying what still works.
    let refused = |(status, body): (StatusCode, Value), what: &str| {
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::FORBIDDEN, Some("lease_expired")),
            "{what}: {body}"
        );
        let message = body["message"].as_str().unwrap();
        assert!(
            message.contains("backups are refused")
                && message.contains("restores and browsing work until"),
            "{what}: {message}"
        );
    };
    refused(
        t.put_object("Cloud", "index", &"ab".repeat(32), vec![1; 64])
            .await,
        "an index file",
    );
    refused(
        t.upload_pack("Cloud", &"cd".repeat(32), &[], &[0; 64])
            .await,
        "a pack",
    );
    let (point, _) = &local.points[0];
    refused(
        t.json(
            reqwest::Method::DELETE,
            &format!("/v1/repos/Cloud/points/{point}"),
            None,
        )
        .await,
        "deleting a point",
    );
    refused(
        t.json(
            reqwest::Method::POST,
            "/v1/subtenants",
            Some(json!({"name": "late", "password": "late-password", "repo": "Cloud", "quota_bytes": 1})),
        )
        .await,
        "a new subtenant",
    );
    assert_eq!(
        t.json(reqwest::Method::GET, "/v1/repos/Cloud/points", None)
            .await
            .1,
        points,
        "nothing changed"
    );

    // The SP shortens the grace period to nothing: the account is refused.
    gw.db.set_lease_grace_days(0).await.unwrap();
    let (status, body) = t.json(reqwest::Method::GET, "/v1/repos", None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("lease_expired"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("time for restores is over"),
        "{body}"
    );
    gw.stop().await;
}
