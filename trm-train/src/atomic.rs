//! Writing output files so that a crash never leaves a half-written one and nothing that is
//! not a regular file gets replaced.
//!
//! Every file `trm-train` writes (checkpoints, configs, metrics, reports, generated puzzle
//! files, packed models) goes through [`write_with`]:
//! - a **regular file** (or a path that does not exist yet) is written to a temporary file
//!   in the same folder, synced and renamed over it: readers see the old file or the new
//!   one, never a mix. The temporary name is unique per process and per write, so parallel
//!   commands writing next to each other never share one. A failed write or rename removes
//!   it, and temporary files that a killed process left for the same target are removed by
//!   the next write;
//! - a **symlink** is followed, and its target is what gets replaced (the link stays);
//! - a **character device or FIFO** (`/dev/null`, `/dev/stdout`, a pipe) is written through,
//!   never replaced;
//! - a **directory, block device or socket** is refused with an error naming it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};

/// Creates the output folder `path` with its parents, if missing. A path that exists as
/// anything but a folder is refused with a message naming it (not `File exists`).
pub fn create_dir(path: &Path) -> Result<()> {
    if let Ok(meta) = fs::metadata(path)
        && !meta.is_dir()
    {
        bail!(
            "{} exists and is not a folder: name a new folder or an existing one",
            path.display()
        );
    }
    fs::create_dir_all(path).with_context(|| format!("cannot create the folder {}", path.display()))
}

/// Writes `bytes` to `path` (see the module docs).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |w| Ok(w.write_all(bytes)?))
}

/// Writes `path` with `write` (see the module docs). `write` may fail; then nothing at
/// `path` changes (unless it is a device or FIFO, which is written through).
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let target = resolve_symlinks(path)?;
    match fs::metadata(&target) {
        Ok(meta) if meta.is_file() => replace(&target, Some(meta.permissions()), write),
        Ok(meta) => write_through(&target, &meta, write),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => replace(&target, None, write),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", target.display())),
    }
    .with_context(|| format!("writing {}", path.display()))
}

/// Follows symlinks (also dangling ones: their target is created) up to a fixed depth.
fn resolve_symlinks(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = fs::read_link(&current)
                    .with_context(|| format!("cannot read the link {}", current.display()))?;
                current = match current.parent() {
                    Some(dir) if link.is_relative() => dir.join(link),
                    _ => link,
                };
            }
            _ => return Ok(current),
        }
    }
    bail!("{}: too many levels of symbolic links", path.display())
}

/// Writes into an existing non-regular file (character device, FIFO) without replacing it.
fn write_through(
    path: &Path,
    meta: &fs::Metadata,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let kind = kind_of(meta);
    if !matches!(kind, "character device" | "FIFO") {
        bail!(
            "{} is a {kind}, not a file; give a file path",
            path.display()
        );
    }
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open the {kind} {}", path.display()))?;
    let mut out = BufWriter::new(file);
    write(&mut out)?;
    out.flush()?;
    Ok(())
}

/// What a non-regular file is, in words.
fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "character device";
        }
        if t.is_fifo() {
            return "FIFO";
        }
        if t.is_block_device() {
            return "block device";
        }
        if t.is_socket() {
            return "socket";
        }
    }
    "special file"
}

/// Writes a temporary file next to `path`, syncs it and renames it over `path`.
fn replace(
    path: &Path,
    permissions: Option<fs::Permissions>,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<()>,
) -> Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temporaries(&dir, name);
    let tmp = dir.join(temporary_name(name, std::process::id()));
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let written = (|| {
        if let Some(p) = permissions {
            file.set_permissions(p)?;
        }
        let mut out = BufWriter::new(file);
        write(&mut out)?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    } else if let Ok(d) = File::open(&dir) {
        // The rename is durable once the folder is synced (best effort: not every file
        // system allows syncing a folder).
        let _ = d.sync_all();
    }
    written
}

/// Age after which a temporary file of a dead process is removed.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Distinguishes the writes of one process.
static WRITES: AtomicU64 = AtomicU64::new(0);

/// `.NAME.PID-N.tmp`: hidden, unique per process and write, and recognisable as ours.
fn temporary_name(name: &std::ffi::OsStr, pid: u32) -> OsString {
    let mut tmp = OsString::from(".");
    tmp.push(name);
    tmp.push(format!(
        ".{pid}-{}.tmp",
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    tmp
}

/// Removes `.NAME.PID-N.tmp` files in `dir` whose process no longer runs (left by a kill)
/// and that were last written more than [`STALE_AFTER`] ago (a writer on another machine or in
/// another pid namespace looks dead here, but none writes one file for that long). Only where
/// that can be known (Linux `/proc`); elsewhere they stay.
fn remove_stale_temporaries(dir: &Path, name: &std::ffi::OsStr) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Some(name) = name.to_str() else { return };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(rest) = file_name
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
        else {
            continue;
        };
        let Some((pid, n)) = rest.split_once('-') else {
            continue;
        };
        let (Ok(pid), Ok(_)) = (pid.parse::<u32>(), n.parse::<u64>()) else {
            continue;
        };
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("trm-atomic-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    use trm_testkit::dir_entries as entries;

    #[test]
    fn output_folders_are_created_and_a_file_in_the_way_is_named() {
        let dir = scratch("create_dir");
        let nested = dir.join("a").join("b");
        create_dir(&nested).unwrap();
        create_dir(&nested).unwrap();
        assert!(nested.is_dir());
        let file = dir.join("f.txt");
        fs::write(&file, b"keep").unwrap();
        let msg = format!("{:#}", create_dir(&file).unwrap_err());
        assert!(msg.contains("f.txt exists and is not a folder"), "{msg}");
        assert_eq!(fs::read(&file).unwrap(), b"keep");
    }

    #[test]
    fn replaces_regular_files_and_leaves_no_temporary() {
        let dir = scratch("regular");
        let f = dir.join("a.txt");
        write_bytes(&f, b"one").unwrap();
        write_bytes(&f, b"two").unwrap();
        assert_eq!(fs::read(&f).unwrap(), b"two");
        assert_eq!(entries(&dir), ["a.txt"]);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_the_temporary() {
        let dir = scratch("failed");
        let f = dir.join("a.txt");
        write_bytes(&f, b"old").unwrap();
        let e = write_with(&f, |w| {
            w.write_all(b"half")?;
            bail!("boom")
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("boom"));
        assert_eq!(fs::read(&f).unwrap(), b"old");
        assert_eq!(entries(&dir), ["a.txt"]);
    }

    #[test]
    fn a_directory_is_refused_and_no_temporary_is_left() {
        let dir = scratch("dir");
        fs::create_dir(dir.join("d")).unwrap();
        let e = write_bytes(&dir.join("d"), b"x").unwrap_err();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
        assert_eq!(entries(&dir), ["d"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed() {
        let dir = scratch("symlink");
        fs::create_dir(dir.join("real")).unwrap();
        let target = dir.join("real/model.trm");
        write_bytes(&target, b"old").unwrap();
        std::os::unix::fs::symlink("real/model.trm", dir.join("link")).unwrap();
        write_bytes(&dir.join("link"), b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(
            fs::symlink_metadata(dir.join("link"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        // A dangling link: its target is created.
        std::os::unix::fs::symlink("real/fresh.trm", dir.join("dangling")).unwrap();
        write_bytes(&dir.join("dangling"), b"fresh").unwrap();
        assert_eq!(fs::read(dir.join("real/fresh.trm")).unwrap(), b"fresh");
        assert_eq!(entries(&dir.join("real")), ["fresh.trm", "model.trm"]);
    }

    #[cfg(unix)]
    #[test]
    fn character_devices_are_written_through() {
        // A device node of our own (the null device, 1:3) needs root; never touch /dev.
        let dir = scratch("device");
        let node = dir.join("null");
        let made = std::process::Command::new("mknod")
            .arg(&node)
            .args(["c", "1", "3"])
            .stderr(std::process::Stdio::null())
            .status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("SKIPPED character_devices_are_written_through: mknod needs root");
            return;
        }
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let before = fs::metadata(&node).unwrap().ino();
        write_bytes(&node, b"discarded").unwrap();
        let after = fs::symlink_metadata(&node).unwrap();
        assert!(after.file_type().is_char_device());
        assert_eq!(before, after.ino());
        assert_eq!(entries(&dir), ["null"]);
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_written_through() {
        let dir = scratch("fifo");
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "mkfifo failed in CI"
            );
            eprintln!("SKIPPED fifos_are_written_through: mkfifo is not available");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(&fifo).unwrap())
        };
        write_bytes(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn temporaries_of_dead_processes_are_removed_and_live_ones_kept() {
        if !Path::new("/proc/self").exists() {
            eprintln!("SKIPPED: no /proc to tell dead processes from live ones");
            return;
        }
        let dir = scratch("stale");
        let f = dir.join("checkpoint.safetensors");
        // A pid above the kernel's maximum (4194304) never runs.
        let dead = dir.join(temporary_name(f.file_name().unwrap(), 4_194_305));
        let live = dir.join(temporary_name(f.file_name().unwrap(), 1));
        let recent = dir.join(temporary_name(f.file_name().unwrap(), 4_194_306));
        let other = dir.join(".other.4194305-0.tmp");
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for p in [&dead, &live, &recent, &other] {
            fs::write(p, b"left over").unwrap();
            if p != &recent {
                let f = File::options().write(true).open(p).unwrap();
                f.set_modified(hour_ago).unwrap();
            }
        }
        write_bytes(&f, b"new").unwrap();
        assert!(!dead.exists());
        assert!(live.exists() && recent.exists() && other.exists());
    }

    #[test]
    fn parallel_writers_use_distinct_temporaries() {
        let dir = scratch("parallel");
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let f = dir.join(format!("m.{i}"));
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_bytes(&f, format!("{i}").repeat(10_000).as_bytes()).unwrap();
                    }
                    f
                })
            })
            .collect();
        for (i, t) in threads.into_iter().enumerate() {
            let f = t.join().unwrap();
            assert_eq!(
                fs::read(&f).unwrap(),
                format!("{i}").repeat(10_000).as_bytes()
            );
        }
        assert_eq!(entries(&dir).len(), 8);
    }
}
