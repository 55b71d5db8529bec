//! The metadata store's conformance suite, run against both engines: an SQLite file and a real
//! PostgreSQL server (started for the test, or the one the test command runs).

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use cloudkeep_api::{QuotaSpec, TenantSettings};
use cloudkeep_gateway::store::accounts::Realm;
use cloudkeep_gateway::store::repos::NewRepo;
use cloudkeep_gateway::store::{Db, DbError, Engine};
use cloudkeep_model::units::Limit;
use cloudkeep_repo::crypto::ChunkId;

async fn conformance(db: Db) {
    // Admins.
    assert_eq!(db.admin_count().await.unwrap(), 0);
    let admin = db.add_admin("root-admin", "hash-1").await.unwrap();
    assert!(matches!(
        db.add_admin("root-admin", "hash-2").await,
        Err(DbError::Conflict(_))
    ));
    let found = db.admin_by_name("root-admin").await.unwrap().unwrap();
    assert_eq!((found.id, found.password_hash.as_str()), (admin, "hash-1"));
    assert!(db.admin_by_name("nobody").await.unwrap().is_none());

    // Sessions: by realm, expiring, deletable.
    db.add_session("tok-a", Realm::Admin, admin, 60_000)
        .await
        .unwrap();
    db.add_session("tok-old", Realm::Admin, admin, -1)
        .await
        .unwrap();
    assert_eq!(
        db.session_subject("tok-a", Realm::Admin).await.unwrap(),
        Some(admin)
    );
    assert_eq!(
        db.session_subject("tok-a", Realm::Tenant).await.unwrap(),
        None
    );
    assert_eq!(
        db.session_subject("tok-old", Realm::Admin).await.unwrap(),
        None
    );
    assert_eq!(db.purge_expired_sessions().await.unwrap(), 1);
    db.delete_session("tok-a").await.unwrap();
    assert_eq!(
        db.session_subject("tok-a", Realm::Admin).await.unwrap(),
        None
    );

    // Cloud repositories.
    let main = db
        .add_repo(NewRepo::folder("main", "/srv/ck/main"))
        .await
        .unwrap();
    db.add_repo(NewRepo::folder("archive", "/srv/ck/archive"))
        .await
        .unwrap();
    assert!(matches!(
        db.add_repo(NewRepo::folder("main", "/elsewhere")).await,
        Err(DbError::Conflict(_))
    ));
    assert_eq!(
        db.repos()
            .await
            .unwrap()
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["archive", "main"]
    );
    assert!(matches!(
        db.repo_by_name("nope").await,
        Err(DbError::NotFound(_))
    ));

    // Tenants with quotas, all or nothing.
    let settings = TenantSettings {
        description: "ACME Corp".into(),
        lease_until_ms: Some(4_102_444_800_000),
        max_tasks: 4,
        bandwidth_bps: 10_000_000,
        keep_deleted_days: 14,
        ..TenantSettings::default()
    };
    let quota = |repo: &str, friendly: Option<&str>, bytes: i64| QuotaSpec {
        repo: repo.into(),
        friendly_name: friendly.map(Into::into),
        bytes: Limit::from_stored(bytes),
    };
    let acme = db
        .add_tenant(
            None,
            "acme",
            "h",
            &settings,
            &[quota("main", Some("Cloud"), 100)],
            false,
        )
        .await
        .unwrap();
    assert_eq!((acme.login.as_str(), acme.parent), ("acme", None));
    assert_eq!(acme.settings, settings);
    assert!(matches!(
        db.add_tenant(None, "acme", "h", &settings, &[], false)
            .await,
        Err(DbError::Conflict(_))
    ));
    assert!(matches!(
        db.add_tenant(None, "bad/name", "h", &settings, &[], false)
            .await,
        Err(DbError::Invalid(_))
    ));
    assert!(matches!(
        db.add_tenant(
            None,
            "ghost",
            "h",
            &settings,
            &[quota("nope", None, 1)],
            false
        )
        .await,
        Err(DbError::NotFound(_))
    ));
    assert!(
        db.tenant_by_login("ghost").await.unwrap().is_none(),
        "a failed create leaves nothing"
    );
    assert!(matches!(
        db.add_tenant(
            None,
            "greedy",
            "h",
            &settings,
            &[quota("main", None, -1)],
            false
        )
        .await,
        Err(DbError::Invalid(_))
    ));

    let sub = db
        .add_tenant(
            Some(acme.id),
            "laptop-1",
            "hs",
            &TenantSettings::default(),
            &[quota("main", None, -1)],
            true,
        )
        .await
        .unwrap();
    assert_eq!(sub.login, "acme/laptop-1");
    assert!(sub.managed);
    let (by_login, hash) = db.tenant_by_login("acme/laptop-1").await.unwrap().unwrap();
    assert_eq!((by_login.id, hash.as_str()), (sub.id, "hs"));
    assert_eq!(db.tenant_by_login("acme").await.unwrap().unwrap().1, "h");
    assert!(db.tenant_by_login("laptop-1").await.unwrap().is_none());
    assert!(
        db.tenant_by_login("other/laptop-1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        db.tenants()
            .await
            .unwrap()
            .iter()
            .map(|t| t.login.as_str())
            .collect::<Vec<_>>(),
        ["acme", "acme/laptop-1"]
    );
    assert_eq!(db.subtenants(acme.id).await.unwrap().len(), 1);
    // The metrics' one-statement figures name subtenants by their login too.
    let figures = db.quota_figures().await.unwrap();
    assert!(
        figures
            .iter()
            .any(|(login, _, _, _)| login == "acme/laptop-1"),
        "{figures:?}"
    );
    assert!(
        figures
            .iter()
            .any(|(login, repo, _, _)| login == "acme" && repo == "main")
    );

    let mut changed = settings.clone();
    changed.enabled = false;
    changed.lease_until_ms = None;
    db.update_tenant(acme.id, &changed).await.unwrap();
    assert_eq!(db.tenant(acme.id).await.unwrap().settings, changed);
    db.touch_tenant(acme.id).await.unwrap();
    assert!(db.tenant(acme.id).await.unwrap().last_activity_ms.is_some());

    db.set_quota(acme.id, &quota("archive", Some("Archive"), 50))
        .await
        .unwrap();
    db.set_quota(acme.id, &quota("main", Some("Cloud"), 200))
        .await
        .unwrap();
    let quotas = db.quotas_of(acme.id).await.unwrap();
    assert_eq!(
        quotas
            .iter()
            .map(|q| (
                q.friendly_name.as_str(),
                q.repo_name.as_str(),
                q.quota_bytes.stored()
            ))
            .collect::<Vec<_>>(),
        [("Archive", "archive", 50), ("Cloud", "main", 200)]
    );
    assert_eq!(quotas[1].repo_id, main.id);

    // Quota reservations are atomic: 40 concurrent reservations of 10 bytes on a 200-byte
    // quota: exactly 20 fit.
    let cloud = quotas[1].id;
    let attempts = (0..40).map(|_| {
        let db = db.clone();
        tokio::spawn(async move { db.reserve(cloud, 10).await.unwrap() })
    });
    let mut granted = 0;
    for attempt in attempts {
        granted += usize::from(attempt.await.unwrap());
    }
    assert_eq!(granted, 20);
    assert_eq!(db.quotas_of(acme.id).await.unwrap()[1].used_bytes, 200);
    db.release(cloud, 30).await.unwrap();
    db.release(cloud, 1_000).await.unwrap();
    assert_eq!(
        db.quotas_of(acme.id).await.unwrap()[1].used_bytes,
        0,
        "never below zero"
    );

    // Packs and the chunk ids they carry: idempotent, shared chunks, presence per id.
    let quota = db.quotas_of(acme.id).await.unwrap()[0].id;
    let (c1, c2, c3) = (ChunkId([1; 32]), ChunkId([2; 32]), ChunkId([3; 32]));
    let (p1, p2) = ("aa".repeat(32), "bb".repeat(32));
    db.add_pack(quota, &p1, 100, (&[c2, c1, c2], None), None)
        .await
        .unwrap();
    db.add_pack(quota, &p1, 100, (&[c1, c2], None), None)
        .await
        .unwrap();
    db.add_pack(quota, &p2, 50, (&[c2], None), None)
        .await
        .unwrap();
    assert_eq!(
        db.chunks_present(quota, &[c1, c2, c3]).await.unwrap(),
        [true, true, false]
    );
    assert_eq!(
        db.chunks_present(quota + 1000, &[c1]).await.unwrap(),
        [false],
        "presence is per quota"
    );
    let packs = db.packs(quota).await.unwrap();
    assert_eq!(
        packs
            .iter()
            .map(|p| (p.id.as_str(), p.bytes))
            .collect::<Vec<_>>(),
        [(p1.as_str(), 100), (p2.as_str(), 50)]
    );
    assert!(db.pack_size(quota, &p2).await.unwrap().is_some());
    // A read of several packs: the quota and the sizes of those it stores, in one statement.
    let absent = "dd".repeat(32);
    let (q, sizes) = db
        .quota_and_packs(acme.id, "Archive", &[&p1, &p2, &absent])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(q.id, quota);
    assert_eq!(
        sizes,
        std::collections::HashMap::from([(p1.clone(), 100), (p2.clone(), 50)])
    );
    let (q, none) = db
        .quota_and_packs(acme.id, "Archive", &[&absent])
        .await
        .unwrap()
        .unwrap();
    assert_eq!((q.id, none.len()), (quota, 0));
    assert!(
        db.quota_and_packs(acme.id, "Nope", &[&p1])
            .await
            .unwrap()
            .is_none()
    );
    assert!(db.quota_and_packs(acme.id, "Archive", &[]).await.is_err());
    // Many ids: several statements each way, answers in order.
    let many: Vec<ChunkId> = (0u32..20_000)
        .map(|i| {
            let mut id = [7u8; 32];
            id[..4].copy_from_slice(&i.to_be_bytes());
            ChunkId(id)
        })
        .collect();
    let even: Vec<ChunkId> = many.iter().step_by(2).copied().collect();
    db.add_pack(quota, &"cc".repeat(32), 10, (&even, None), None)
        .await
        .unwrap();
    let flags = db.chunks_present(quota, &many).await.unwrap();
    assert_eq!(flags.len(), many.len());
    assert!(flags.iter().enumerate().all(|(i, f)| *f == (i % 2 == 0)));

    // Object lock bookkeeping: what is due a lock, and what was locked until when.
    object_locks(&db, quota).await;

    // Job standing: marks only move forward, a proof stays until a newer one, the cap on
    // notifications to the SP holds per account and hour.
    job_health(&db, acme.id, sub.id).await;

    // Cloud replication: hosts, plans on them, the tenants that have each; what is in use is
    // never removed.
    replication(&db).await;

    // Deleting a tenant takes its subtenants, quotas and sessions.
    db.add_session("tok-sub", Realm::Tenant, sub.id, 60_000)
        .await
        .unwrap();
    db.delete_tenant(acme.id).await.unwrap();
    assert!(db.tenants().await.unwrap().is_empty());
    assert!(db.quotas_of(acme.id).await.unwrap().is_empty());
    assert!(db.packs(quota).await.unwrap().is_empty());
    assert_eq!(
        db.chunks_present(quota, &[c1, c2]).await.unwrap(),
        [false, false],
        "a deleted quota's chunk records go with its packs"
    );
    assert_eq!(
        db.session_subject("tok-sub", Realm::Tenant).await.unwrap(),
        None
    );
    assert!(matches!(
        db.delete_tenant(acme.id).await,
        Err(DbError::NotFound(_))
    ));

    // Settings, gateways, audit.
    assert_eq!(db.maintenance().await.unwrap(), None);
    db.set_maintenance(Some("upgrading storage until 14:00"))
        .await
        .unwrap();
    db.set_maintenance(Some("upgrading storage until 15:00"))
        .await
        .unwrap();
    assert_eq!(
        db.maintenance().await.unwrap().as_deref(),
        Some("upgrading storage until 15:00")
    );
    db.set_maintenance(None).await.unwrap();
    assert_eq!(db.maintenance().await.unwrap(), None);

    db.register_gateway("gw-1", "backup.example.net:6180")
        .await
        .unwrap();
    db.register_gateway("gw-2", "10.0.0.2:6180").await.unwrap();
    db.register_gateway("gw-1", "backup.example.net:6181")
        .await
        .unwrap();
    db.heartbeat("gw-2", 12, 340).await.unwrap();
    let gateways = db.gateways().await.unwrap();
    assert_eq!(
        gateways
            .iter()
            .map(|g| (g.id.as_str(), g.address.as_str()))
            .collect::<Vec<_>>(),
        [
            ("gw-1", "backup.example.net:6181"),
            ("gw-2", "10.0.0.2:6180")
        ]
    );
    assert_eq!(
        (gateways[1].connections, gateways[1].requests_per_min),
        (12, 340)
    );
    // Draining is shared: set through one handle, seen by the gateway itself.
    assert!(db.set_draining("gw-2", true).await.unwrap());
    assert!(db.gateway_draining("gw-2").await.unwrap());
    assert!(!db.gateway_draining("gw-1").await.unwrap());
    assert!(
        !db.set_draining("gw-9", true).await.unwrap(),
        "no such gateway"
    );
    assert!(db.gateways().await.unwrap()[1].draining);
    db.set_draining("gw-2", false).await.unwrap();
    assert!(!db.gateway_draining("gw-2").await.unwrap());

    // Bans are counted in the database: failures from two gateways add up.
    for _ in 0..4 {
        assert!(
            !db.login_failed("10.9.9.9", 60_000, 5, 60_000)
                .await
                .unwrap()
        );
    }
    assert!(db.banned_until("10.9.9.9").await.unwrap().is_none());
    assert!(
        db.login_failed("10.9.9.9", 60_000, 5, 60_000)
            .await
            .unwrap()
    );
    assert!(db.banned_until("10.9.9.9").await.unwrap().is_some());
    assert!(db.banned_until("10.9.9.8").await.unwrap().is_none());
    db.login_succeeded("10.9.9.9").await.unwrap();
    assert!(
        db.banned_until("10.9.9.9").await.unwrap().is_some(),
        "a login does not lift a ban in force"
    );
    // An old window starts again from one failure.
    for _ in 0..4 {
        db.login_failed("10.9.9.7", 0, 5, 60_000).await.unwrap();
    }
    assert!(db.banned_until("10.9.9.7").await.unwrap().is_none());

    // One bucket per account: takes from anywhere draw on it; debt shows as negative.
    let first = db.take_bandwidth(77, 1_000, 100_000, 60_000).await.unwrap();
    assert_eq!(first, 40_000);
    let second = db.take_bandwidth(77, 1_000, 100_000, 60_000).await.unwrap();
    assert!((-20_000..=-10_000).contains(&second), "{second}");
    assert_eq!(
        db.take_bandwidth(78, 1_000, 100_000, 1).await.unwrap(),
        99_999,
        "another account's bucket is its own"
    );

    db.audit("root-admin", "tenant.create", "acme", "quota Cloud=100")
        .await
        .unwrap();
    db.audit("root-admin", "tenant.delete", "acme", "")
        .await
        .unwrap();
    let log = db.audit_log(10).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["tenant.delete", "tenant.create"]
    );
}

async fn replication(db: &Db) {
    use cloudkeep_api::replication::{HostFacts, PlanSpec, PlanStorage, StoragePool};
    let host = db.add_host("kvm1", "host-hash").await.unwrap();
    assert_eq!((host.seen_ms, host.facts.as_ref()), (None, None));
    assert!(matches!(
        db.add_host("kvm1", "h").await,
        Err(DbError::Conflict(_))
    ));
    let (id, hash) = db.host_login("kvm1").await.unwrap().unwrap();
    assert_eq!(hash, "host-hash");
    assert!(db.host_login("nobody").await.unwrap().is_none());
    let facts = HostFacts {
        hostname: "kvm1.example".into(),
        os: "linux 6.1".into(),
        version: "0.1.0".into(),
        cpus: 16,
        memory: 64 << 30,
        kvm: true,
        qemu: Some("7.2.15".into()),
        pools: vec![StoragePool {
            name: "main".into(),
            path: "/srv/replicas".into(),
            total: 2 << 40,
            free: 1 << 40,
        }],
        networks: 64,
    };
    db.set_host_facts(id, &facts).await.unwrap();
    let seen = db.host("kvm1").await.unwrap();
    assert_eq!(seen.facts.as_ref(), Some(&facts));
    assert!(seen.seen_ms.is_some());

    // A host's session is of its own realm.
    db.add_session("tok-host", Realm::Host, id, 60_000)
        .await
        .unwrap();
    assert_eq!(
        db.session_subject("tok-host", Realm::Host).await.unwrap(),
        Some(id)
    );
    assert_eq!(
        db.session_subject("tok-host", Realm::Tenant).await.unwrap(),
        None
    );

    let plan = PlanSpec {
        name: "silver".into(),
        host: "kvm1".into(),
        cpu: 4,
        memory: 8 << 30,
        storage: vec![PlanStorage {
            pool: "main".into(),
            bytes: 500 << 30,
        }],
        networks: 2,
        internet: true,
    };
    let view = db.add_plan(&plan).await.unwrap();
    assert_eq!(
        view.plan, plan,
        "every field reads back, sizes beyond 32 bits too"
    );
    assert!(matches!(
        db.add_plan(&plan).await,
        Err(DbError::Conflict(_))
    ));
    let mut elsewhere = plan.clone();
    elsewhere.name = "gold".into();
    elsewhere.host = "nowhere".into();
    assert!(matches!(
        db.add_plan(&elsewhere).await,
        Err(DbError::NotFound(_))
    ));
    assert_eq!(db.host("kvm1").await.unwrap().plans, ["silver"]);

    // Subscriptions: tenants only, twice is once, a plan in use stays, a host with plans too.
    let sub_sub = db.subscribe("silver", "acme/laptop-1").await;
    assert!(
        matches!(&sub_sub, Err(DbError::Invalid(m)) if m.contains("not subtenants")),
        "{sub_sub:?}"
    );
    assert!(matches!(
        db.subscribe("silver", "ghost").await,
        Err(DbError::NotFound(_))
    ));
    db.subscribe("silver", "acme").await.unwrap();
    let view = db.subscribe("silver", "acme").await.unwrap();
    assert_eq!(view.tenants, ["acme"]);
    let acme = db.tenant_by_login("acme").await.unwrap().unwrap().0;
    assert_eq!(db.plans_of(acme.id).await.unwrap().len(), 1);
    assert!(matches!(
        db.remove_plan("silver").await,
        Err(DbError::Invalid(_))
    ));
    assert!(matches!(
        db.remove_host("kvm1").await,
        Err(DbError::Invalid(_))
    ));
    assert!(
        db.plan("silver").await.is_ok(),
        "a refused removal removes nothing"
    );
    db.unsubscribe("silver", "acme").await.unwrap();
    assert!(matches!(
        db.unsubscribe("silver", "acme").await,
        Err(DbError::NotFound(_))
    ));
    assert!(db.plans_of(acme.id).await.unwrap().is_empty());
    db.remove_plan("silver").await.unwrap();
    assert!(db.plans().await.unwrap().is_empty());
    db.remove_host("kvm1").await.unwrap();
    assert!(db.hosts().await.unwrap().is_empty());
    assert_eq!(
        db.session_subject("tok-host", Realm::Host).await.unwrap(),
        None,
        "a removed host's sessions end"
    );
}

async fn job_health(db: &Db, tenant: i64, sub: i64) {
    use cloudkeep_api::health::RunReport;
    let report = |kind: &str, result: &str, at: i64| RunReport {
        job: "docs".into(),
        kind: kind.into(),
        result: result.into(),
        finished_ms: at,
        point_time_ms: Some(at - 5),
        suspicious: Vec::new(),
        message: String::new(),
    };
    assert!(
        db.report_run(tenant, &report("backup", "success", 100))
            .await
            .unwrap()
    );
    assert!(
        db.report_run(tenant, &report("restore-test", "success", 200))
            .await
            .unwrap()
    );
    // An older report arriving late changes nothing; a failed test keeps the last proof.
    assert!(
        db.report_run(tenant, &report("restore-test", "failed", 150))
            .await
            .unwrap()
    );
    let rows = db.health_of(tenant).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (
            rows[0].tested_ms,
            rows[0].test_result.as_deref(),
            rows[0].proven_ms
        ),
        (Some(200), Some("success"), Some(200))
    );
    assert!(
        db.report_run(tenant, &report("restore-test", "failed", 300))
            .await
            .unwrap()
    );
    let mut suspicious = report("backup", "warning", 400);
    suspicious.suspicious = vec!["40 files renamed".into()];
    assert!(db.report_run(tenant, &suspicious).await.unwrap());
    let row = db.health_of(tenant).await.unwrap().remove(0);
    assert_eq!(
        (
            row.test_result.as_deref(),
            row.proven_ms,
            row.proven_point_ms
        ),
        (Some("failed"), Some(200), Some(195))
    );
    assert_eq!((row.suspicious_ms, row.backup_ms), (Some(400), Some(400)));
    assert_eq!(row.suspicious, ["40 files renamed"]);
    assert_eq!(row.login, "acme");
    // Subtenants' rows are theirs, under their login.
    assert!(
        db.report_run(sub, &report("backup", "failed", 100))
            .await
            .unwrap()
    );
    assert_eq!(db.health_of(sub).await.unwrap()[0].login, "acme/laptop-1");
    assert_eq!(db.all_health().await.unwrap().len(), 2);
    // Two notifications an hour for this account: the third is refused, another account's is
    // not.
    assert!(db.may_notify(tenant, "docs", 1_000_000, 2).await.unwrap());
    assert!(
        db.report_run(
            tenant,
            &RunReport {
                job: "mail".into(),
                ..report("backup", "failed", 500)
            }
        )
        .await
        .unwrap()
    );
    assert!(db.may_notify(tenant, "mail", 1_000_001, 2).await.unwrap());
    assert!(!db.may_notify(tenant, "mail", 1_000_002, 2).await.unwrap());
    assert!(db.may_notify(sub, "docs", 1_000_002, 2).await.unwrap());
    assert!(
        db.may_notify(tenant, "docs", 1_000_000 + 3_600_001, 2)
            .await
            .unwrap(),
        "an hour later"
    );
}

/// The lock keeper's rows: every pack, small object (not `locks`) and restore point is due
/// until locked; a lock ending inside the window is due again; a retired pack or recycled
/// point is due only while insider protection keeps it; an object written again (a new
/// version in the bucket) is due again.
async fn object_locks(db: &Db, quota: i64) {
    use cloudkeep_gateway::store::object_lock::LockItem;
    let sorted = |mut items: Vec<LockItem>| {
        items.sort_by_key(|i| format!("{i:?}"));
        items
    };
    let now = cloudkeep_gateway::store::now_ms();
    let day = 86_400_000;
    db.put_object(quota, ("keyring", "keyring"), 10, None, None)
        .await
        .unwrap();
    db.put_object(quota, ("index", "idx1"), 10, None, None)
        .await
        .unwrap();
    db.put_object(quota, ("locks", "lk1"), 10, Some("task-1"), None)
        .await
        .unwrap();
    db.put_object(quota, ("sets", "set1"), 10, None, None)
        .await
        .unwrap();
    db.add_point(quota, "pt1", 1, "set1", 10, None)
        .await
        .unwrap();
    let due = sorted(
        db.to_lock(quota, now + 7 * day, now - 7 * day, 100)
            .await
            .unwrap(),
    );
    let packs = db.packs(quota).await.unwrap();
    assert_eq!(due.len(), packs.len() + 4, "{due:?}");
    assert!(due.contains(&LockItem::Object("keyring".into(), "keyring".into())));
    assert!(due.contains(&LockItem::Point("pt1".into())));
    assert!(
        !due.iter()
            .any(|i| matches!(i, LockItem::Object(k, _) if k == "locks")),
        "lock objects come and go: never locked"
    );
    // A limit bounds each kind's answer.
    assert!(
        db.to_lock(quota, now + 7 * day, now - 7 * day, 1)
            .await
            .unwrap()
            .len()
            <= 3
    );
    // Locked for 10.5 days: not due within a 7-day window, due within a 14-day one.
    db.mark_locked(quota, &due, now + 21 * day / 2)
        .await
        .unwrap();
    assert!(
        db.to_lock(quota, now + 7 * day, now - 7 * day, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.to_lock(quota, now + 14 * day, now - 14 * day, 100)
            .await
            .unwrap()
            .len(),
        due.len()
    );
    // Written again: a new version, due again.
    db.put_object(quota, ("keyring", "keyring"), 12, None, None)
        .await
        .unwrap();
    assert_eq!(
        db.to_lock(quota, now + 7 * day, now - 7 * day, 100)
            .await
            .unwrap(),
        [LockItem::Object("keyring".into(), "keyring".into())]
    );
    // Retired and recycled things stay due while insider protection keeps them, not after.
    db.mark_locked(quota, &due, now - day).await.unwrap();
    db.retire_packs(quota, &[packs[0].id.clone()])
        .await
        .unwrap();
    assert!(db.recycle_point(quota, "pt1").await.unwrap());
    let kept = db
        .to_lock(quota, now + 7 * day, now - 7 * day, 100)
        .await
        .unwrap();
    assert!(
        kept.contains(&LockItem::Pack(packs[0].id.clone())),
        "{kept:?}"
    );
    assert!(kept.contains(&LockItem::Point("pt1".into())), "{kept:?}");
    let later = db
        .to_lock(quota, now + 7 * day, now + day, 100)
        .await
        .unwrap();
    assert!(
        !later.contains(&LockItem::Pack(packs[0].id.clone())),
        "{later:?}"
    );
    assert!(!later.contains(&LockItem::Point("pt1".into())), "{later:?}");
    // Repository lock state, recorded and read back.
    let lock = cloudkeep_api::ObjectLock::On {
        mode: cloudkeep_api::LockMode::Governance,
        default_days: Some(30),
    };
    db.set_repo_lock("main", &lock).await.unwrap();
    assert_eq!(
        db.repo_by_name("main").await.unwrap().object_lock,
        Some(lock)
    );
    assert_eq!(db.repo_by_name("archive").await.unwrap().object_lock, None);
}

/// Shared subtenant quotas charge their tenant and fixed ones are carved from it, atomically:
/// no mix of concurrent writers by a tenant and its subtenants stores more than its quota.
async fn quota_accounting(db: Db) {
    db.add_repo(NewRepo::folder("main", "/srv/ck/main"))
        .await
        .unwrap();
    let spec = |bytes: i64| QuotaSpec {
        repo: "main".into(),
        friendly_name: Some("Cloud".into()),
        bytes: Limit::from_stored(bytes),
    };
    let settings = TenantSettings::default();
    let acme = db
        .add_tenant(None, "acme", "h", &settings, &[spec(1000)], false)
        .await
        .unwrap();
    let shared = db
        .add_tenant(Some(acme.id), "shared", "h", &settings, &[spec(-1)], false)
        .await
        .unwrap();
    let fixed = db
        .add_tenant(Some(acme.id), "fixed", "h", &settings, &[spec(300)], false)
        .await
        .unwrap();
    let q = |account: i64| {
        let db = db.clone();
        async move { db.quotas_of(account).await.unwrap().remove(0) }
    };
    let (tq, sq, fq) = (q(acme.id).await, q(shared.id).await, q(fixed.id).await);
    assert_eq!((tq.carved_bytes, tq.free()), (300, Limit::Bytes(700)));
    assert!(matches!(
        db.add_tenant(Some(acme.id), "greedy", "h", &settings, &[spec(701)], false)
            .await,
        Err(DbError::QuotaFull(_))
    ));
    assert!(db.tenant_by_login("acme/greedy").await.unwrap().is_none());

    // The shared subtenant's writes are the tenant's.
    assert!(db.reserve(sq.id, 600).await.unwrap());
    assert_eq!(
        (q(acme.id).await.used_bytes, q(shared.id).await.used_bytes),
        (600, 600)
    );
    assert!(!db.reserve(sq.id, 101).await.unwrap(), "700 free minus 600");
    assert!(
        !db.reserve(tq.id, 101).await.unwrap(),
        "the carve is not the tenant's"
    );
    assert!(db.reserve(tq.id, 100).await.unwrap());
    assert!(!db.reserve(sq.id, 1).await.unwrap(), "the tenant is full");
    assert_eq!(
        q(shared.id).await.used_bytes,
        600,
        "a refusal changes nothing"
    );
    // The fixed subtenant keeps its carve whatever the others do.
    assert!(db.reserve(fq.id, 300).await.unwrap());
    assert!(!db.reserve(fq.id, 1).await.unwrap());
    db.release(sq.id, 600).await.unwrap();
    assert_eq!(
        (q(acme.id).await.used_bytes, q(shared.id).await.used_bytes),
        (100, 0)
    );

    // Many writers at once: the tenant's 600 free bytes go to exactly 60 of 100 reservations.
    let mut writers = Vec::new();
    for n in 0..100 {
        let db = db.clone();
        let quota = if n % 2 == 0 { sq.id } else { tq.id };
        writers.push(tokio::spawn(
            async move { db.reserve(quota, 10).await.unwrap() },
        ));
    }
    let mut granted = 0;
    for w in writers {
        granted += usize::from(w.await.unwrap());
    }
    assert_eq!(granted, 60);
    let t = q(acme.id).await;
    assert_eq!(t.used_bytes + t.carved_bytes, 1000);
    let s_used = q(shared.id).await.used_bytes;

    // Insider protection moves a shared subtenant's bytes on both rows.
    db.shift_to_recycle(sq.id, 10).await.unwrap();
    assert_eq!(q(acme.id).await.recycle_bytes, 10);
    assert_eq!(q(shared.id).await.used_bytes, s_used - 10);
    db.drop_recycled(sq.id, 10).await.unwrap();
    assert_eq!(q(acme.id).await.recycle_bytes, 0);

    // Changing arrangements keeps the figures: shared -> fixed gives its use back to the
    // tenant and carves the new size; fixed -> shared the reverse; sizes must fit.
    let s_used = q(shared.id).await.used_bytes;
    let t_used = q(acme.id).await.used_bytes;
    assert!(matches!(
        db.set_subtenant_quota(shared.id, &spec(s_used - 1)).await,
        Err(DbError::QuotaFull(_))
    ));
    db.set_subtenant_quota(shared.id, &spec(s_used))
        .await
        .unwrap();
    let t = q(acme.id).await;
    assert_eq!(
        (t.used_bytes, t.carved_bytes),
        (t_used - s_used, 300 + s_used)
    );
    db.set_subtenant_quota(shared.id, &spec(-1)).await.unwrap();
    let t = q(acme.id).await;
    assert_eq!((t.used_bytes, t.carved_bytes), (t_used, 300));
    assert!(matches!(
        db.set_subtenant_quota(fixed.id, &spec(300 + t.free().stored() + 1))
            .await,
        Err(DbError::QuotaFull(_))
    ));
    db.release(tq.id, 50).await.unwrap();
    db.set_subtenant_quota(fixed.id, &spec(350)).await.unwrap();
    assert_eq!(q(acme.id).await.carved_bytes, 350);

    // Deleting subtenants gives back their carve and their shared use.
    db.delete_tenant(fixed.id).await.unwrap();
    db.delete_tenant(shared.id).await.unwrap();
    let t = q(acme.id).await;
    assert_eq!(t.carved_bytes, 0);
    assert_eq!(t.used_bytes, t_used - 50 - s_used);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_accounts_quotas() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("meta.db").display().to_string())
        .await
        .unwrap();
    quota_accounting(db).await;
}

// PostgreSQL is started from Debian's own binaries (initdb, pg_ctl) on the Linux test host.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_accounts_quotas() {
    let (_server, url) = cloudkeep_tests::postgres::fresh_database();
    quota_accounting(Db::open(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let db = Db::open(&path.display().to_string()).await.unwrap();
    assert_eq!(db.engine(), Engine::Sqlite);
    conformance(db.clone()).await;
    db.close().await;
    // Reopening finds the schema in place and the data kept.
    let again = Db::open(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    assert_eq!(again.admin_count().await.unwrap(), 1);
}

// PostgreSQL is started from Debian's own binaries (initdb, pg_ctl) on the Linux test host.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_conforms() {
    let (_server, url) = cloudkeep_tests::postgres::fresh_database();
    let db = Db::open(&url).await.unwrap();
    assert_eq!(db.engine(), Engine::Postgres);
    conformance(db.clone()).await;
    db.close().await;
    let again = Db::open(&url).await.unwrap();
    assert_eq!(again.admin_count().await.unwrap(), 1);
}

/// A database written before chunk ids were stored as bytes (migration 0004) keeps every pack
/// and chunk record through the upgrade. `any_url` opens it without migrating.
async fn upgrade_keeps_packs_and_chunks(url: &str, any_url: &str, engine: Engine) {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(any_url).await.unwrap();
    let mut migrator = match engine {
        Engine::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        Engine::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    migrator.migrations = migrator
        .migrations
        .iter()
        .filter(|m| m.version <= 3)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    migrator.run(&pool).await.unwrap();
    let (p1, p2) = ("aa".repeat(32), "bb".repeat(32));
    let (c1, c2) = ("01".repeat(32), "02".repeat(32));
    for sql in [
        "INSERT INTO repos (id, name, kind, location, created_ms) VALUES (1, 'main', 'folder', '/srv/main', 0)".to_owned(),
        "INSERT INTO tenants (id, name, password_hash, created_ms) VALUES (1, 'acme', 'hash', 0)".into(),
        "INSERT INTO quotas (id, tenant_id, repo_id, friendly_name, quota_bytes) VALUES (1, 1, 1, 'Cloud', 1000000)".into(),
        format!("INSERT INTO packs (quota_id, id, bytes, created_ms) VALUES (1, '{p1}', 10, 1), (1, '{p2}', 20, 2)"),
        format!("INSERT INTO chunks (quota_id, id, pack) VALUES (1, '{c1}', '{p1}'), (1, '{c2}', '{p1}'), (1, '{c2}', '{p2}')"),
    ] {
        sqlx::query(&sql).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let db = Db::open(url).await.unwrap();
    let (c1, c2, c3) = (ChunkId([1; 32]), ChunkId([2; 32]), ChunkId([3; 32]));
    assert_eq!(
        db.chunks_present(1, &[c1, c2, c3]).await.unwrap(),
        [true, true, false]
    );
    let packs = db.packs(1).await.unwrap();
    assert_eq!(
        packs
            .iter()
            .map(|p| (p.id.as_str(), p.bytes))
            .collect::<Vec<_>>(),
        [(p1.as_str(), 10), (p2.as_str(), 20)]
    );
    db.add_pack(1, &"cc".repeat(32), 30, (&[c3], None), None)
        .await
        .unwrap();
    assert_eq!(db.chunks_present(1, &[c3]).await.unwrap(), [true]);
    db.delete_tenant(1).await.unwrap();
    assert_eq!(
        db.chunks_present(1, &[c1, c2, c3]).await.unwrap(),
        [false, false, false]
    );
    db.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_upgrades_keep_packs_and_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let url = path.display().to_string();
    let any_url = cloudkeep_gateway::store::sqlite_url(&path);
    upgrade_keeps_packs_and_chunks(&url, &any_url, Engine::Sqlite).await;
}

// PostgreSQL is started from Debian's own binaries (initdb, pg_ctl) on the Linux test host.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_upgrades_keep_packs_and_chunks() {
    let (_server, url) = cloudkeep_tests::postgres::fresh_database();
    upgrade_keeps_packs_and_chunks(&url, &url, Engine::Postgres).await;
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_say_what_to_do() {
    let err = Db::open("sqlite://").await.unwrap_err();
    assert!(
        err.to_string().contains("not a database Cloudkeep can use"),
        "{err}"
    );
    let err = Db::open("postgres://ck:hunter2@127.0.0.1:1/postgres")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("cannot open the metadata database"), "{text}");
    assert!(!text.contains("hunter2"), "no password in messages: {text}");
}
