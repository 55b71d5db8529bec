//! Writes the small bootable test machine's disk (`cloudkeep_tests::bootdisk`) for the
//! replication benchmark: `cargo run -p cloudkeep-tests --example bootdisk -- OUT MARKER`.

#[cfg(unix)]
fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(out), Some(marker)) = (args.next(), args.next()) else {
        eprintln!("usage: bootdisk OUT MARKER");
        std::process::exit(2);
    };
    cloudkeep_tests::bootdisk::build(std::path::Path::new(&out), &marker);
}

#[cfg(not(unix))]
fn main() {
    eprintln!("the test machine's disk is made on Linux");
    std::process::exit(2);
}
