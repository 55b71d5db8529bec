//! Writes the golden fixtures of Cloudkeep's frozen formats — pack, index, point, chunk set,
//! tree, keyring (password and recovery slots), recovery key, enrollment file — into a new
//! folder, with a manifest of what they hold. Committed once (`core/tenant/tests/golden/v1`), they are
//! never written again: `core/tenant/tests/golden.rs` checks that this version, and every later one,
//! still reads them.
//!
//! `cargo run -p cloudkeep-tenant --example golden -- core/tenant/tests/golden/vN` (refuses an existing
//! folder); `-- --backup-file core/tenant/tests/golden/v1` added the backup file (`point.ckb`)
//! to version 1's fixtures once, when that format came.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::KdfParams;
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::repo::{NewRepo, Repository};
use cloudkeep_tenant::policies::{Enrollment, seal_enrollment};
// Deterministic bytes (xorshift): a regenerated copy can be checked against the manifest.
use cloudkeep_tests::pseudo_random;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The fixture repository's encryption password.
const PASSWORD: &str = "golden fixture password";
/// The enrollment file's one-time code.
const CODE: &str = "GOLDE-NFIXT-URECO-DE123";

/// Adds the backup file (`point.ckb`: the newest point, under the fixture's password) to an
/// existing fixture folder, once: the format came after the rest of version 1's fixtures.
fn backup_file(fixture: &Path) -> Result<()> {
    let target = fixture.join("point.ckb");
    if target.exists() {
        return Err(format!("{} exists: it is never replaced", target.display()).into());
    }
    let work = std::env::temp_dir().join(format!("cloudkeep-golden-ckb-{}", std::process::id()));
    let status = std::process::Command::new("cp")
        .args(["-a"])
        .arg(fixture.join("repo"))
        .arg(&work)
        .status()?;
    if !status.success() {
        return Err("cannot copy the fixture repository".into());
    }
    let repo = Repository::open(
        Arc::new(FolderStore::open(&work)?),
        cloudkeep_repo::repo::Unlock::Password(PASSWORD),
    )?;
    let newest = repo
        .list_points()?
        .pop()
        .ok_or("the fixture repository has no point")?;
    cloudkeep_repo::engine::portable::export_point(
        &repo,
        &newest,
        &target,
        &cloudkeep_repo::engine::portable::ExportOptions {
            password: Some(PASSWORD),
            kdf: KdfParams::minimum(),
            cancel: Default::default(),
        },
        &|_| {},
    )?;
    fs::remove_dir_all(&work)?;
    println!("wrote {}", target.display());
    Ok(())
}

fn main() -> Result<()> {
    if let (Some(flag), Some(dir)) = (std::env::args().nth(1), std::env::args().nth(2))
        && flag == "--backup-file"
    {
        return backup_file(Path::new(&dir));
    }
    let out = std::env::args()
        .nth(1)
        .ok_or("usage: golden OUT_DIR (a folder that does not exist yet) | golden --backup-file FIXTURE_DIR")?;
    let out = Path::new(&out);
    if out.exists() {
        return Err(format!(
            "{} exists: golden fixtures are written once and never replaced",
            out.display()
        )
        .into());
    }
    let work = std::env::temp_dir().join(format!("cloudkeep-golden-{}", std::process::id()));
    let source = work.join("src");
    fs::create_dir_all(source.join("docs/deep"))?;
    fs::write(source.join("docs/readme.txt"), "golden readme\n".repeat(50))?;
    fs::write(source.join("docs/deep/data.bin"), pseudo_random(100_000, 7))?;
    fs::write(source.join("empty.txt"), b"")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink("docs/readme.txt", source.join("link"))?;

    let store = Arc::new(FolderStore::open(out.join("repo"))?);
    let mut repo = Repository::init(
        store,
        NewRepo::Encrypted {
            password: PASSWORD,
            kdf: KdfParams::minimum(),
        },
    )?;
    let mut keyring = repo.keyring().clone();
    let master = keyring.unlock(PASSWORD)?;
    let (_, recovery) = keyring.add_recovery_key(&master, "golden recovery key")?;
    repo.save_keyring(keyring)?;
    fs::write(out.join("recovery-key.txt"), recovery.to_text().as_bytes())?;

    let mut options = BackupOptions {
        sources: vec![source.clone()],
        disks: vec![],
        excludes: vec![],
        one_file_system: false,
        compression: Compression::Default,
        host: "golden-host".into(),
        job: "golden".into(),
        parent: None,
        cancel: Default::default(),
    };
    let mut points = Vec::new();
    let first = backup(&repo, &options, &|_| {})?.point;
    points.push((first.id.clone(), files_of(&source)?));
    fs::write(
        source.join("docs/readme.txt"),
        "golden readme, second\n".repeat(40),
    )?;
    fs::write(source.join("docs/new.bin"), pseudo_random(50_000, 9))?;
    options.parent = Some(first);
    let second = backup(&repo, &options, &|_| {})?.point;
    points.push((second.id.clone(), files_of(&source)?));

    let enrollment = Enrollment {
        policy_id: "pol-golden".into(),
        policy: "golden-policy".into(),
        computer: "golden-pc".into(),
        addresses: vec!["gateway.example:6180".into(), "10.0.0.2:6180".into()],
        fingerprint: "AB:".repeat(31) + "AB",
        login: "acme/golden-policy-golden-pc".into(),
        password: "subtenant password".into(),
        repo: "Cloud".into(),
        job: "golden-policy".into(),
        agent_key: recovery.to_text().to_string(),
    };
    fs::write(
        out.join("enrollment.json"),
        seal_enrollment(&enrollment, CODE)?,
    )?;

    let manifest = serde_json::json!({
        "written_by": cloudkeep_model::VERSION,
        "password": PASSWORD,
        "one_time_code": CODE,
        "enrollment": {
            "policy_id": enrollment.policy_id,
            "computer": enrollment.computer,
            "login": enrollment.login,
            "addresses": enrollment.addresses,
        },
        "source": source.display().to_string(),
        "points": points
            .iter()
            .map(|(id, files)| serde_json::json!({"id": id, "files": files}))
            .collect::<Vec<_>>(),
    });
    fs::write(
        out.join("manifest.json"),
        serde_json::to_string_pretty(&manifest)?,
    )?;
    fs::remove_dir_all(&work)?;
    println!("golden fixtures written to {}", out.display());
    Ok(())
}

/// Every regular file under `root` (relative path) with the BLAKE3 of its content; symlinks
/// with `link:` and their target.
fn files_of(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let rel = path.strip_prefix(root)?.display().to_string();
            let meta = fs::symlink_metadata(&path)?;
            if meta.file_type().is_symlink() {
                out.insert(rel, format!("link:{}", fs::read_link(&path)?.display()));
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                out.insert(rel, blake3::hash(&fs::read(&path)?).to_hex().to_string());
            }
        }
    }
    Ok(out)
}
