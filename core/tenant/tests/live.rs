//! The console's run registry on real jobs: a backup to a local folder watched to its end, a
//! second start refused while one runs, a stopped run recorded as `stopped`, a restore with its
//! report, and the browse cache listing the new point.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudkeep_model::paths::DataHome;
use cloudkeep_model::retention::RetentionPolicy;
use cloudkeep_repo::engine::restore::{Conflict, Destination, RestoreOptions};
use cloudkeep_tenant::TenantContext;
use cloudkeep_tenant::catalog::Catalogs;
use cloudkeep_tenant::jobs::{self, JobSpec, Schedule, Target};
use cloudkeep_tenant::live::{RunEvent, RunKind, Runs};
use cloudkeep_tests::pseudo_random;

fn spec(source: &std::path::Path, repo: &std::path::Path) -> JobSpec {
    JobSpec {
        mode: Default::default(),
        volumes: vec![],
        sources: vec![source.display().to_string()],
        excludes: vec![],
        target: Target::Folder {
            path: repo.display().to_string(),
        },
        schedule: Schedule::Manual,
        retention: RetentionPolicy::default(),
        encrypted: true,
        compression: "default".into(),
        retries: 0,
        retry_wait_s: 1,
        health_check: Schedule::Manual,
        restore_test: Schedule::Manual,
        restore_test_sample: 1,
        agent: None,
    }
}

/// Collects a watcher's events until `Done`.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<RunEvent>>>);

impl Heard {
    fn watcher(&self) -> Box<dyn Fn(&RunEvent) + Send + Sync> {
        let heard = self.0.clone();
        Box::new(move |e| heard.lock().unwrap().push(e.clone()))
    }

    fn wait_done(&self) -> RunEvent {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(done) = self
                .0
                .lock()
                .unwrap()
                .iter()
                .find(|e| matches!(e, RunEvent::Done { .. }))
            {
                return done.clone();
            }
            assert!(Instant::now() < deadline, "the run never ended");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                RunEvent::Line { line } => Some(line.clone()),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn runs_are_watched_refused_twice_stopped_and_restored() {
    let tmp = tempfile::tempdir().unwrap();
    let home = DataHome::at(tmp.path().join("home")).unwrap();
    home.ensure().unwrap();
    let source = tmp.path().join("src");
    std::fs::create_dir_all(&source).unwrap();
    for i in 0..24 {
        std::fs::write(
            source.join(format!("f{i:02}.bin")),
            pseudo_random(4 << 20, i),
        )
        .unwrap();
    }
    let ctx = TenantContext::open(home.clone()).unwrap();
    let repo_dir = tmp.path().join("repo");
    ctx.block_on(jobs::create(
        ctx.state(),
        ctx.secrets(),
        "docs",
        &spec(&source, &repo_dir),
        Some("pw"),
    ))
    .unwrap();

    let runs = Runs::default();
    let catalogs = Catalogs::default();
    let forgotten = Arc::new(Mutex::new(Vec::new()));
    {
        let (catalogs, forgotten) = (catalogs.clone(), forgotten.clone());
        runs.on_done(move |job, kind| {
            catalogs.forget(job);
            forgotten.lock().unwrap().push((job.to_owned(), kind));
        });
    }

    // A first run, watched to its end; a second start meanwhile is refused.
    let heard = Heard::default();
    runs.start(&ctx, "docs", RunKind::Backup).unwrap();
    assert!(runs.watch("docs", RunKind::Backup, heard.watcher()));
    let again = runs.start(&ctx, "docs", RunKind::Backup).unwrap_err();
    assert!(again.to_string().contains("already running"), "{again}");
    assert_eq!(runs.running().len(), 1);
    let RunEvent::Done { session, error, .. } = heard.wait_done() else {
        unreachable!()
    };
    assert_eq!(session.result, "success", "{error:?} {session:?}");
    assert!(session.id > 0);
    assert!(
        heard.lines().iter().any(|l| l.contains("a full backup")),
        "{:?}",
        heard.lines()
    );
    assert!(runs.running().is_empty());
    assert_eq!(
        forgotten.lock().unwrap().as_slice(),
        [("docs".to_owned(), RunKind::Backup)]
    );

    // The browse cache sees the point.
    let points = catalogs.points(&ctx, "docs").unwrap();
    assert_eq!(points.len(), 1);
    let page = catalogs
        .list(&ctx, "docs", "latest", &source.display().to_string(), 0, 10)
        .unwrap();
    assert_eq!(page.total, 24);
    assert_eq!(page.entries.len(), 10);
    assert_eq!(page.entries[0].name, "f00.bin");
    let rest = catalogs
        .list(
            &ctx,
            "docs",
            "latest",
            &source.display().to_string(),
            20,
            10,
        )
        .unwrap();
    assert_eq!(rest.entries.len(), 4);

    // A run stopped at once is recorded as stopped and makes no point.
    std::fs::write(source.join("new.bin"), pseudo_random(8 << 20, 99)).unwrap();
    let heard = Heard::default();
    runs.start(&ctx, "docs", RunKind::Backup).unwrap();
    runs.watch("docs", RunKind::Backup, heard.watcher());
    assert!(runs.stop("docs", RunKind::Backup));
    let RunEvent::Done { session, .. } = heard.wait_done() else {
        unreachable!()
    };
    assert_eq!(session.result, "stopped", "{session:?}");
    assert_eq!(catalogs.points(&ctx, "docs").unwrap().len(), 1);

    // A restore of one file, with its report.
    let out = tmp.path().join("out");
    let heard = Heard::default();
    let file = source.join("f03.bin").display().to_string();
    runs.start_restore(
        &ctx,
        "docs",
        "latest",
        RestoreOptions {
            destination: Destination::Folder(out.clone()),
            paths: vec![file],
            conflict: Conflict::Skip,
            cancel: Default::default(),
        },
    )
    .unwrap();
    runs.watch("docs", RunKind::Restore, heard.watcher());
    let RunEvent::Done {
        session, restore, ..
    } = heard.wait_done()
    else {
        unreachable!()
    };
    assert_eq!(session.kind, "restore");
    assert_eq!(session.result, "success", "{session:?}");
    assert_eq!(restore.unwrap().files, 1);
    assert_eq!(
        std::fs::read(out.join("f03.bin")).unwrap(),
        pseudo_random(4 << 20, 3)
    );
    let all = ctx.block_on(ctx.state().sessions(Some("docs"))).unwrap();
    let kinds: Vec<(&str, &str)> = all
        .iter()
        .map(|s| (s.kind.as_str(), s.result.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("restore", "success"),
            ("backup", "stopped"),
            ("backup", "success")
        ]
    );
}
