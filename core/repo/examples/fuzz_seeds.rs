//! Writes a seed corpus for the fuzz targets in `core/fuzz`: real objects of every stored
//! format, taken from an unencrypted repository made for the purpose (a small tree with a
//! nested folder, a sparse file, a symlink and a hard link, backed up twice), and real request
//! bodies, headers, objects and answers of the gateway protocol, so the fuzzer starts from
//! valid bytes and mutates from there.
//!
//! `cargo run -p cloudkeep-repo --example fuzz_seeds -- CORPUS_DIR`

use std::fs;
use std::path::Path;
use std::sync::Arc;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backend::{MetaKind, PackStore, RepoBackend};
use cloudkeep_repo::compress::Compression;
use cloudkeep_repo::crypto::{KdfParams, Keyring};
use cloudkeep_repo::engine::backup::{BackupOptions, backup};
use cloudkeep_repo::repo::{NewRepo, Repository};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn seed(corpus: &Path, target: &str, name: &str, bytes: &[u8]) -> Result<()> {
    let dir = corpus.join(target);
    fs::create_dir_all(&dir)?;
    fs::write(dir.join(name), bytes)?;
    Ok(())
}

fn source_tree(root: &Path) -> Result<()> {
    fs::create_dir_all(root.join("docs/deep"))?;
    fs::write(root.join("docs/readme.txt"), "hello\n".repeat(100))?;
    fs::write(
        root.join("docs/deep/data.bin"),
        (0..=255u8).cycle().take(70_000).collect::<Vec<_>>(),
    )?;
    let sparse = fs::File::create(root.join("sparse.img"))?;
    sparse.set_len(1 << 20)?;
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("docs/readme.txt", root.join("link"))?;
        fs::hard_link(root.join("docs/readme.txt"), root.join("hard.txt"))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let corpus = std::env::args()
        .nth(1)
        .ok_or("usage: fuzz_seeds CORPUS_DIR")?;
    let corpus = Path::new(&corpus);
    let tmp = std::env::temp_dir().join(format!("cloudkeep-fuzz-seeds-{}", std::process::id()));
    let source = tmp.join("src");
    source_tree(&source)?;
    let backend = Arc::new(FolderStore::open(tmp.join("repo"))?);
    let repo = Repository::init(backend.clone(), NewRepo::Unencrypted)?;
    let mut options = BackupOptions {
        sources: vec![source.clone()],
        disks: vec![],
        excludes: vec![],
        one_file_system: false,
        compression: Compression::Default,
        host: "seed-host".into(),
        job: "seeds".into(),
        parent: None,
        cancel: Default::default(),
    };
    let first = backup(&repo, &options, &|_| {})?.point;
    fs::write(source.join("docs/new.txt"), b"second point")?;
    // A backup file of the first point (unencrypted, as the repository is).
    let file = tmp.join("first.ckb");
    cloudkeep_repo::engine::portable::export_point(
        &repo,
        &first,
        &file,
        &cloudkeep_repo::engine::portable::ExportOptions {
            password: None,
            kdf: KdfParams::minimum(),
            cancel: Default::default(),
        },
        &|_| {},
    )?;
    seed(corpus, "backup_file", "first", &fs::read(&file)?)?;
    options.parent = Some(first);
    backup(&repo, &options, &|_| {})?;

    for (kind, target) in [
        (MetaKind::Index, "index"),
        (MetaKind::Point, "point"),
        (MetaKind::ChunkSet, "chunkset"),
        (MetaKind::Keyring, "keyring"),
    ] {
        for name in backend.list_meta(kind)? {
            seed(corpus, target, &name, &backend.get_meta(kind, &name)?)?;
        }
    }
    let (encrypted, _) = Keyring::create_encrypted("seed", KdfParams::minimum(), "seed")?;
    seed(
        corpus,
        "keyring",
        "encrypted",
        encrypted.to_json().as_bytes(),
    )?;

    let index = repo.load_index()?;
    for (pack, len) in backend.list_packs()? {
        seed(
            corpus,
            "pack",
            &pack.to_hex(),
            &backend.read_range(&pack, 0, len)?,
        )?;
    }
    for (n, (id, loc)) in index.iter().enumerate().take(16) {
        let stored = backend.read_range(&loc.pack, loc.offset, u64::from(loc.stored_len))?;
        seed(corpus, "blob", &format!("blob-{n}"), &stored)?;
        let plain = repo.read_blob(&index, id)?;
        if plain.starts_with(b"CKTR") {
            seed(corpus, "tree", &format!("tree-{n}"), &plain)?;
        }
    }
    let groups = vec!["0123"; 17].join("-");
    seed(
        corpus,
        "recovery_key",
        "shape",
        format!("CKRK1-{groups}").as_bytes(),
    )?;
    network_seeds(corpus, &backend)?;
    fs::remove_dir_all(&tmp)?;
    println!("seed corpus written to {}", corpus.display());
    Ok(())
}

/// The network targets' seeds: a selector byte, then a valid body of that kind.
fn network_seeds(corpus: &Path, backend: &FolderStore) -> Result<()> {
    let with = |selector: u8, body: &[u8]| {
        let mut out = vec![selector];
        out.extend_from_slice(body);
        out
    };
    let requests: [(u8, &str); 10] = [
        (0, r#"{"user": "acme/laptop", "password": "pw"}"#),
        (
            1,
            r#"{"ids": ["0000000000000000000000000000000000000000000000000000000000000000"]}"#,
        ),
        (
            2,
            r#"{"name": "laptop", "password": "pw", "repo": "Cloud", "quota_bytes": -1}"#,
        ),
        (
            3,
            r#"{"quota_bytes": 1000, "enabled": true, "password": null}"#,
        ),
        (4, r#"{"kind": "backup"}"#),
        (5, r#"{"ranges": [{"pack": "00", "offset": 0, "len": 16}]}"#),
        (6, r#"{"tenant": "acme", "repo": "Cloud", "point": "ab"}"#),
        (7, r#"{"deep": true}"#),
        (
            9,
            r#"{"repo": "main", "friendly_name": "Cloud", "bytes": 1000}"#,
        ),
        (12, r#"{"message": "maintenance"}"#),
    ];
    for (n, (selector, body)) in requests.iter().enumerate() {
        seed(
            corpus,
            "gateway_requests",
            &format!("request-{n}"),
            &with(*selector, body.as_bytes()),
        )?;
    }
    seed(
        corpus,
        "gateway_headers",
        "upload",
        b"bytes=0-99\n4196\n3\nBearer abc\nx\ny",
    )?;
    let keyring = backend.get_meta(MetaKind::Keyring, "keyring")?;
    seed(corpus, "gateway_objects", "keyring", &with(0, &keyring))?;
    let (encrypted, _) = Keyring::create_encrypted("seed", KdfParams::minimum(), "seed")?;
    seed(
        corpus,
        "gateway_objects",
        "encrypted",
        &with(0, encrypted.to_json().as_bytes()),
    )?;
    for name in backend.list_meta(MetaKind::ChunkSet)? {
        seed(
            corpus,
            "gateway_objects",
            &format!("set-{name}"),
            &with(2, &backend.get_meta(MetaKind::ChunkSet, &name)?),
        )?;
    }
    let answers: [(u8, &str); 6] = [
        (0, r#"{"code": "quota_exceeded", "message": "full"}"#),
        (2, r#"{"token": "abc", "expires_ms": 1}"#),
        (3, r#"[{"id": "00", "bytes": 10, "damaged": true}]"#),
        (
            8,
            r#"{"quotas": 1, "unavailable": [], "packs_checked": 2, "bytes_hashed": 0, "lost": [], "damaged": [], "missing_objects": [], "orphans_removed": 0, "orphan_bytes": 0, "temp_bytes_removed": 0, "reservations_reclaimed": 0, "reserved_bytes_returned": 0, "recounted": []}"#,
        ),
        (9, r#"{"health": "missing"}"#),
        (15, "\u{3}\u{5}\u{2}\u{0}abcdefg"),
    ];
    for (n, (selector, body)) in answers.iter().enumerate() {
        seed(
            corpus,
            "client_responses",
            &format!("answer-{n}"),
            &with(*selector, body.as_bytes()),
        )?;
    }
    disk_heads(corpus)?;
    volume_seeds(corpus)
}

/// The first 64 KiB of a GPT disk and of an MBR disk with one partition each, written by the
/// same libraries the layout reader uses.
fn disk_heads(corpus: &Path) -> Result<()> {
    let head = |disk: std::io::Cursor<Vec<u8>>| disk.into_inner()[..64 << 10].to_vec();
    let mut disk = std::io::Cursor::new(vec![0u8; 2 << 20]);
    let mut gpt = gptman::GPT::new_from(&mut disk, 512, [7; 16])?;
    gpt[1] = gptman::GPTPartitionEntry {
        partition_type_guid: [1; 16],
        unique_partition_guid: [2; 16],
        starting_lba: 2048,
        ending_lba: 4000,
        attribute_bits: 4,
        partition_name: "root".into(),
    };
    gpt.write_into(&mut disk)?;
    seed(corpus, "disk_layout", "gpt", &head(disk))?;
    let mut disk = std::io::Cursor::new(vec![0u8; 2 << 20]);
    let mut mbr = mbrman::MBR::new_from(&mut disk, 512, [1, 2, 3, 4])?;
    mbr[1] = mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_ACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys: 0x83,
        last_chs: mbrman::CHS::empty(),
        starting_lba: 2048,
        sectors: 2000,
    };
    mbr.write_into(&mut disk)?;
    seed(corpus, "disk_layout", "mbr", &head(disk))?;
    // An extended partition with two logical ones: a chain of boot records to walk.
    let mut disk = std::io::Cursor::new(vec![0u8; 2 << 20]);
    let mut mbr = mbrman::MBR::new_from(&mut disk, 512, [5, 6, 7, 8])?;
    mbr.align = 1;
    let entry = |sys, starting_lba, sectors| mbrman::MBRPartitionEntry {
        boot: mbrman::BOOT_INACTIVE,
        first_chs: mbrman::CHS::empty(),
        sys,
        last_chs: mbrman::CHS::empty(),
        starting_lba,
        sectors,
    };
    mbr[1] = entry(0x05, 8, 100);
    for (start, sectors) in [(10, 20), (40, 20)] {
        mbr.logical_partitions.push(mbrman::LogicalPartition {
            partition: entry(0x83, start, sectors),
            absolute_ebr_lba: start - 1,
            ebr_sectors: Some(sectors + 1),
            ebr_first_chs: mbrman::CHS::empty(),
            ebr_last_chs: Some(mbrman::CHS::empty()),
            bootstrap_code: [0; 446],
        });
    }
    mbr.write_into(&mut disk)?;
    seed(corpus, "disk_layout", "mbr-extended", &head(disk))?;
    // A file system on the whole disk: an ext4 superblock and group descriptors of a small
    // volume (the first 64 KiB of what mkfs.ext4 writes, reduced to the fields read).
    let mut ext = vec![0u8; 64 << 10];
    let sb = &mut ext[1024..2048];
    let put = |sb: &mut [u8], at: usize, v: u32| sb[at..at + 4].copy_from_slice(&v.to_le_bytes());
    put(sb, 0x04, 512); // blocks
    put(sb, 0x14, 0); // first data block
    put(sb, 0x18, 2); // 4 KiB blocks
    put(sb, 0x20, 32768); // blocks per group
    put(sb, 0x28, 256); // inodes per group
    sb[0x38..0x3A].copy_from_slice(&0xEF53u16.to_le_bytes());
    put(sb, 0x60, 0x40); // extents: ext4
    let gd = &mut ext[4096..4128];
    put(gd, 0x00, 3); // block bitmap
    put(gd, 0x04, 4); // inode bitmap
    put(gd, 0x08, 5); // inode table
    ext[3 * 4096] = 0xFF; // blocks 0-7 used
    seed(corpus, "disk_layout", "ext4", &ext)?;
    // A whole-disk NTFS volume of 2 MiB as mkntfs makes it (boot sector, MFT, volume bitmap),
    // trimmed of its zero tail (the target pads to 2 MiB); skipped where mkntfs is missing.
    let dir = tempfile::tempdir()?;
    let volume = dir.path().join("ntfs.img");
    fs::File::create(&volume)?.set_len(2 << 20)?;
    let path = volume.to_string_lossy().into_owned();
    if quietly("mkntfs", &["-F", "-Q", "-q", "-c", "512", &path]) {
        let mut bytes = fs::read(&volume)?;
        // Without the backup boot sector (the last sector), the rest is zeros at the end.
        bytes.truncate(bytes.len().saturating_sub(512));
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes.truncate(end);
        seed(corpus, "disk_layout", "ntfs", &bytes)?;
    } else {
        eprintln!("mkntfs is missing (Debian package ntfs-3g): no NTFS seed for disk_layout");
    }
    // A whole-disk ext4 volume of 2 MiB holding files (one sparse, with an extent tree of
    // depth 1): what change tracking reads (inode tables, extents); zero tail trimmed.
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub"))?;
    fs::write(tree.join("sub/small.txt"), b"small")?;
    let mut sparse = fs::File::create(tree.join("sparse.bin"))?;
    for i in 0..8u8 {
        std::io::Seek::seek(&mut sparse, std::io::SeekFrom::Start(u64::from(i) * 65536))?;
        std::io::Write::write_all(&mut sparse, &[i + 1; 2048])?;
    }
    drop(sparse);
    let volume = dir.path().join("ext4.img");
    fs::File::create(&volume)?.set_len(2 << 20)?;
    let (tree, path) = (tree.to_string_lossy(), volume.to_string_lossy());
    if quietly("mkfs.ext4", &["-q", "-F", "-N", "32", "-d", &tree, &path]) {
        let mut bytes = fs::read(&volume)?;
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes.truncate(end);
        seed(corpus, "disk_layout", "ext4-files", &bytes)?;
    } else {
        eprintln!("mkfs.ext4 is missing (Debian package e2fsprogs): no ext4 files seed");
    }
    Ok(())
}

/// Runs a tool quietly; whether it succeeded.
fn quietly(program: &str, args: &[&str]) -> bool {
    std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Small volumes with a few files and a folder, as the OS's own tools make them (ext4 by
/// `mkfs.ext4 -d`, FAT by `mkfs.vfat` + `mcopy`, NTFS by `mkntfs` + `ntfscp`), trimmed of
/// their zero tails: seeds of `volume_files`. A missing tool skips its seed.
fn volume_seeds(corpus: &Path) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub"))?;
    fs::write(tree.join("hello.txt"), "hello\n")?;
    fs::write(tree.join("sub/data.bin"), vec![7u8; 5000])?;
    let t = tree.to_str().unwrap_or_default();
    for kind in ["ext4", "vfat", "ntfs"] {
        let vol = dir.path().join(format!("{kind}.img"));
        fs::File::create(&vol)?.set_len(2 << 20)?;
        let v = vol.to_str().unwrap_or_default();
        let made = match kind {
            "ext4" => quietly("mkfs.ext4", &["-q", "-F", "-b", "1024", "-d", t, v]),
            "vfat" => {
                quietly("mkfs.vfat", &[v])
                    && quietly(
                        "mcopy",
                        &[
                            "-i",
                            v,
                            "-s",
                            &format!("{t}/sub"),
                            &format!("{t}/hello.txt"),
                            "::/",
                        ],
                    )
            }
            _ => {
                quietly("mkntfs", &["-F", "-Q", "-q", "-c", "512", v])
                    && quietly("ntfscp", &["-f", v, &format!("{t}/hello.txt"), "hello.txt"])
            }
        };
        if !made {
            eprintln!("no {kind} seed for volume_files (its tools are missing)");
            continue;
        }
        let mut bytes = fs::read(&vol)?;
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        bytes.truncate(end);
        seed(corpus, "volume_files", kind, &bytes)?;
    }
    Ok(())
}
