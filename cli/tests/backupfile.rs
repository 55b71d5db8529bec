//! Backup files (`points export|file|import`, `verify --file`, `restore … --from-file`)
//! through real gateways: a point exported from one provider restores identically on a fresh
//! computer with no provider after the provider lost the data; a cut or damaged file is
//! refused naming its part; importing into a second provider sends only what it lacks; an
//! image-level point's disk comes back from its file byte for byte.

// Test code: a panic with a message is how a check reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use cloudkeep_tests::pseudo_random;

use crate::support::{Cli, gateway_with_tenant, tenant_at, tenant_with_provider};

const FILE_PW: &str = "a file password of its own";

fn encrypted_job(cli: &Cli, name: &str, source: &Path, password: &str) {
    cli.ok(
        &[
            "job",
            "create",
            name,
            "--provider",
            "acme-sp",
            "--repo",
            "Cloud",
            "--source",
            source.to_str().unwrap(),
            "--encryption-password-stdin",
        ],
        Some(password),
    );
}

#[test]
fn a_point_exported_restores_anywhere_and_imports_into_another_provider() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let source = d.join("docs");
    std::fs::create_dir_all(source.join("deep")).unwrap();
    std::fs::write(source.join("deep/big.bin"), pseudo_random(6 << 20, 3)).unwrap();
    std::fs::write(source.join("notes.txt"), "first\n").unwrap();
    let (gw, sp, fp) = gateway_with_tenant(d);
    let laptop = tenant_with_provider(d, &gw, &fp);
    encrypted_job(&laptop, "docs", &source, "the job password");
    laptop.ok(&["job", "run", "docs"], None);
    let first = laptop.json(&["points", "list", "--job", "docs"])[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    std::fs::write(source.join("notes.txt"), "second\n").unwrap();
    laptop.ok(&["job", "run", "docs"], None);
    let second_tree = cloudkeep_tests::file_contents(&source);

    // Two files: the first point and the newest.
    let f1 = d.join("first.ckb");
    let f2 = d.join("newest.ckb");
    let said = laptop.ok(
        &[
            "points",
            "export",
            &first[..12],
            "--job",
            "docs",
            "--to",
            f1.to_str().unwrap(),
        ],
        Some(FILE_PW),
    );
    assert!(said.contains("not the job's"), "{said}");
    laptop.ok(
        &[
            "points",
            "export",
            "latest",
            "--job",
            "docs",
            "--to",
            f2.to_str().unwrap(),
        ],
        Some(FILE_PW),
    );
    #[cfg(unix)]
    crate::support::assert_owner_only(&f2);
    let refused = laptop.fails(
        &[
            "points",
            "export",
            "latest",
            "--job",
            "docs",
            "--to",
            f2.to_str().unwrap(),
        ],
        Some(FILE_PW),
        1,
    );
    assert!(refused.contains("already exists"), "{refused}");
    let info = laptop.json(&["points", "file", f2.to_str().unwrap()]);
    assert_eq!(info["job"], "docs");
    assert_eq!(info["encrypted"], true);
    // The export is a session of the job.
    let sessions = laptop.ok(&["job", "show", "docs"], None);
    assert!(sessions.contains("export"), "{sessions}");

    // Into a second provider (another computer there, its own job and key): the first file
    // sends everything, the newest only what changed.
    let d2 = d.join("provider2");
    std::fs::create_dir_all(&d2).unwrap();
    let (gw2, _sp2, fp2) = gateway_with_tenant(&d2);
    let elsewhere = tenant_at(d2.join("elsewhere-home"), &gw2, &fp2);
    encrypted_job(&elsewhere, "carried", &d2, "another job password");
    let full = elsewhere.json_with(
        &["points", "import", f1.to_str().unwrap(), "--job", "carried"],
        Some(FILE_PW),
    );
    let delta = elsewhere.json_with(
        &["points", "import", f2.to_str().unwrap(), "--job", "carried"],
        Some(FILE_PW),
    );
    let (full_bytes, delta_bytes) = (
        full["bytes_sent"].as_u64().unwrap(),
        delta["bytes_sent"].as_u64().unwrap(),
    );
    assert!(full_bytes > 6 << 20, "{full}");
    assert!(
        delta_bytes * 100 < full_bytes && delta["blobs_present"].as_u64().unwrap() > 0,
        "only the missing chunks travel: {delta} after {full}"
    );
    let out = d.join("from-provider2");
    elsewhere.restore_latest("carried", &out, None);
    assert_eq!(
        cloudkeep_tests::file_contents(&cloudkeep_tests::restored_at(&out, &source)),
        second_tree,
        "the imported point restores from the second provider"
    );
    elsewhere.ok(&["verify", "--job", "carried"], None);

    // The first provider loses the data; a fresh computer without any provider restores the
    // newest point from its file alone.
    sp.ok(
        &["sp", "tenant", "delete", "acme", "--with-data", "--yes"],
        None,
    );
    assert!(
        laptop
            .run(
                &[
                    "restore",
                    "files",
                    "latest",
                    "--job",
                    "docs",
                    "--to",
                    d.join("x").to_str().unwrap()
                ],
                None
            )
            .status
            .code()
            != Some(0),
        "the provider no longer has it"
    );
    let fresh = Cli {
        home: d.join("fresh-home"),
    };
    let verified = fresh.ok(&["verify", "--file", f2.to_str().unwrap()], Some(FILE_PW));
    assert!(verified.contains("no damage found"), "{verified}");
    let wrong = fresh.fails(
        &["verify", "--file", f2.to_str().unwrap()],
        Some("the job password"),
        1,
    );
    assert!(wrong.contains("not the job's"), "{wrong}");
    let back = d.join("from-file");
    fresh.ok(
        &[
            "restore",
            "files",
            "latest",
            "--from-file",
            f2.to_str().unwrap(),
            "--to",
            back.to_str().unwrap(),
        ],
        Some(FILE_PW),
    );
    assert_eq!(
        cloudkeep_tests::file_contents(&cloudkeep_tests::restored_at(&back, &source)),
        second_tree,
        "identical from the file alone"
    );

    // Cut short, or one bit flipped: refused, naming the part.
    let whole = std::fs::read(&f2).unwrap();
    let cut = d.join("cut.ckb");
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    let said = fresh.fails(
        &["verify", "--file", cut.to_str().unwrap()],
        Some(FILE_PW),
        1,
    );
    assert!(
        said.contains("is incomplete") && said.contains("inside part"),
        "{said}"
    );
    let flipped = d.join("flipped.ckb");
    let mut bad = whole.clone();
    let at = whole.len() / 2;
    bad[at] ^= 0x04;
    std::fs::write(&flipped, &bad).unwrap();
    let out = fresh.run(
        &["verify", "--file", flipped.to_str().unwrap()],
        Some(FILE_PW),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("(pack of data, at byte"), "{said}");
    let out = fresh.run(
        &[
            "restore",
            "files",
            "latest",
            "--from-file",
            flipped.to_str().unwrap(),
            "--to",
            d.join("never").to_str().unwrap(),
        ],
        Some(FILE_PW),
    );
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{said}");
    assert!(said.contains("is damaged: part"), "{said}");
    drop(gw2);
    drop(gw);
}

/// An image-level point's file: `restore disk --from-file` writes the disk back byte for byte
/// (and a volume alone), with no provider.
#[cfg(target_os = "linux")]
#[test]
fn an_image_level_point_comes_back_from_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tree = d.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("data.bin"), pseudo_random(3 << 20, 11)).unwrap();
    let (disk, volume) = crate::support::ext4_disk(d, "machine.img", 32, 40960, &tree);
    let (gw, _sp, fp) = gateway_with_tenant(d);
    let laptop = tenant_with_provider(d, &gw, &fp);
    crate::support::image_job(&laptop, "machine", &disk);
    let file = d.join("machine.ckb");
    laptop.ok(
        &[
            "points",
            "export",
            "latest",
            "--job",
            "machine",
            "--to",
            file.to_str().unwrap(),
        ],
        None,
    );
    drop(gw);
    let fresh = Cli {
        home: d.join("fresh"),
    };
    let info = fresh.json(&["points", "file", file.to_str().unwrap()]);
    assert_eq!(
        (info["image"].as_bool(), info["encrypted"].as_bool()),
        (Some(true), Some(false))
    );
    let back = d.join("back.img");
    fresh.ok(
        &[
            "restore",
            "disk",
            "latest",
            "--from-file",
            file.to_str().unwrap(),
            "--to",
            back.to_str().unwrap(),
            "--yes",
        ],
        None,
    );
    assert!(
        std::fs::read(&back).unwrap() == std::fs::read(&disk).unwrap(),
        "the disk, byte for byte"
    );
    let vol = d.join("vol.img");
    fresh.ok(
        &[
            "restore",
            "volume",
            "latest",
            "--from-file",
            file.to_str().unwrap(),
            "--volume",
            "1",
            "--to",
            vol.to_str().unwrap(),
            "--yes",
        ],
        None,
    );
    assert!(
        std::fs::read(&vol).unwrap() == std::fs::read(&volume).unwrap(),
        "the volume, byte for byte"
    );
}
