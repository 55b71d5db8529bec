//! The `cloudkeep` binary's integration tests, one binary: the real CLI as users run it, against
//! real gateway processes, a real Secret Service, and what a killed process or a full disk does.

mod backupfile;
mod cli;
// Killed processes, full disks and kill -9: Unix process control throughout.
#[cfg(unix)]
mod faults;
mod gateway;
// Loop devices, mounts and fsfreeze: Linux, as root.
#[cfg(target_os = "linux")]
mod image;
mod local;
// A Garage cluster from its Linux binary, with Unix process control.
#[cfg(unix)]
mod objects;
mod policy;
mod prove;
// A cloud host is a Linux machine (QEMU/KVM).
#[cfg(target_os = "linux")]
mod replication;
// QEMU boots of recovery media: Linux, as root.
#[cfg(target_os = "linux")]
mod recovery;
// FUSE mounts: Linux, as root.
#[cfg(target_os = "linux")]
mod publish;
// A real Secret Service (gnome-keyring on D-Bus): Linux desktops.
#[cfg(unix)]
mod secrets;
mod sharing;
mod signals;
mod space;
mod support;
mod wine;
