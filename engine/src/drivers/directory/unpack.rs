//! Unpacking a `files.tar.zst` written by [`super::backup`], as fast as `zstd -d | tar -x`.
//!
//! A restore's time is how long production is down, so this is built like the shell pipeline:
//!
//! - **Two threads, as the pipeline has two processes.** One decompresses the archive into
//!   1 MiB chunks and hands them over a bounded channel; the other parses the tar stream from
//!   those chunks and writes the tree. The decompressing thread reads the archive to its very
//!   end, after the tar stream's end marker too, so zstd's checksum of the whole frame is
//!   always verified: a damaged archive is an error, never a quietly different tree.
//! - **Entries are written here, not by `tar::Entry::unpack_in`.** The `tar` crate still parses
//!   the stream (GNU long names, PAX records), but its `unpack_in` canonicalises the destination
//!   and the entry's parent for every entry (a `realpath` each, one system call per path
//!   component), copies with an 8 KiB buffer and sets the mode by path afterwards. Here a file
//!   is created with its final mode, written a MiB at a time, its mtime set on the open handle,
//!   and `fchmod`ed only when the creation cannot give its mode (setuid, setgid and sticky bits,
//!   which a write clears anyway, or bits the umask removes).
//! - **Safety without `realpath`.** An entry's path must be relative and free of `..`, and its
//!   parent must be a directory *this unpacking made* (a set of paths): an entry is never
//!   written through a symbolic link, whether the archive planted it or not. A file or link
//!   never replaces a directory. Anything else in the archive (hard links, devices, FIFOs: a
//!   backup never writes them) is refused by name.
//! - **Directories** are created writable (0700) when their entry comes, and get their mode and
//!   mtime at the end, deepest first, as `tar` does: a read-only directory would refuse its
//!   children, and adding a child changes a directory's mtime.
//! - **Cancellation** is checked before every entry and every [`super::CHECK_EVERY`] bytes of a
//!   big file.
//!
//! Durability is the caller's business ([`super::restore_in_place`] syncs the file system once,
//! before the swap); an unpacking into scratch space needs none.

use std::{
    collections::HashSet,
    fs::{self, DirBuilder, File, FileTimes, OpenOptions},
    io::{self, Read, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt},
    path::{Component, Path, PathBuf},
    sync::mpsc::{self, Receiver, SyncSender},
    thread,
    time::{Duration, UNIX_EPOCH},
};

use nix::{
    fcntl::AT_FDCWD,
    sys::{
        stat::{UtimensatFlags, utimensat},
        time::TimeSpec,
    },
};
use tokio_util::sync::CancellationToken;

use super::CHECK_EVERY;
use crate::drivers::DriverError;

/// Decompressed bytes handed over at a time, and chunks in flight at most: 8 MiB of memory.
const CHUNK: usize = 1 << 20;
const CHUNKS_IN_FLIGHT: usize = 8;
/// Bytes written to a file at a time.
const WRITE_BUFFER: usize = 1 << 20;

/// What an unpacking wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    pub files: u64,
    pub directories: u64,
    pub symlinks: u64,
    /// Bytes of the regular files.
    pub bytes: u64,
}

/// Unpacks `archive` into `into` (created if missing). Blocking. On an error `into` may hold
/// part of the tree: the caller removes it.
pub fn unpack(archive: &Path, into: &Path, stop: &CancellationToken) -> Result<Unpacked, DriverError> {
    let reading = || DriverError::io(format!("reading {}", archive.display()));
    let file = File::open(archive).map_err(reading())?;
    fs::create_dir_all(into).map_err(DriverError::io(format!("creating {}", into.display())))?;
    let (chunks, received) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
    let (recycle, recycled) = mpsc::sync_channel(CHUNKS_IN_FLIGHT + 2);
    let decompressor = thread::Builder::new()
        .name("steward-unzstd".into())
        .spawn(move || decompress(file, &chunks, &recycled))
        .map_err(DriverError::io("starting the decompressing thread"))?;
    let mut stream = Chunks {
        received,
        recycle,
        current: Vec::new(),
        start: 0,
        end: 0,
    };
    let unpacked = Tree::new(into, stop).write(&mut stream, archive).and_then(|unpacked| {
        // Past the tar end marker: read the rest so the frame's checksum is checked.
        io::copy(&mut stream, &mut io::sink()).map_err(reading())?;
        Ok(unpacked)
    });
    // Stops the decompressing thread at its next hand-over when the unpacking stopped early.
    drop(stream);
    if decompressor.join().is_err() {
        return Err(DriverError::Failed(format!(
            "reading {}: the decompressing thread stopped",
            archive.display()
        )));
    }
    unpacked
}

/// A chunk of decompressed bytes: the buffer (always [`CHUNK`] long, so it can be reused) and
/// how much of it is filled.
type Chunk = (Vec<u8>, usize);

/// The decompressing thread: reads `archive` to its end and sends it decompressed, or the
/// error that stopped it. Returns early when the reader is gone.
fn decompress(archive: File, chunks: &SyncSender<io::Result<Chunk>>, recycled: &Receiver<Vec<u8>>) {
    let mut decoder = match zstd::Decoder::new(archive) {
        Ok(decoder) => decoder,
        Err(e) => {
            let _ = chunks.send(Err(e));
            return;
        }
    };
    loop {
        let mut buffer = recycled.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
        let mut filled = 0;
        while filled < CHUNK {
            match decoder.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = chunks.send(Err(e));
                    return;
                }
            }
        }
        if filled == 0 || chunks.send(Ok((buffer, filled))).is_err() || filled < CHUNK {
            return;
        }
    }
}

/// The decompressed stream, read from the chunks the decompressing thread sends; the end of
/// the channel is the end of the stream.
struct Chunks {
    received: Receiver<io::Result<Chunk>>,
    /// Read buffers go back to the decompressing thread, which would otherwise allocate (and
    /// zero) a new MiB for every chunk.
    recycle: SyncSender<Vec<u8>>,
    current: Vec<u8>,
    start: usize,
    end: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.start == self.end {
            let (next, filled) = match self.received.recv() {
                Ok(chunk) => chunk?,
                Err(_) => return Ok(0),
            };
            let done = std::mem::replace(&mut self.current, next);
            if !done.is_empty() {
                let _ = self.recycle.try_send(done);
            }
            (self.start, self.end) = (0, filled);
        }
        let n = buf.len().min(self.end - self.start);
        buf[..n].copy_from_slice(&self.current[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

/// The tree being written.
struct Tree<'a> {
    root: &'a Path,
    stop: &'a CancellationToken,
    /// Directories (relative to `root`, which is `""`) this unpacking made or found as real
    /// directories: the only places an entry is written into.
    made: HashSet<PathBuf>,
    /// Directory entries with their modes and mtimes, set at the end.
    directories: Vec<(PathBuf, u32, u64)>,
    /// The process's umask: which modes a file can be created with.
    umask: u32,
    buffer: Vec<u8>,
    unpacked: Unpacked,
}

impl<'a> Tree<'a> {
    fn new(root: &'a Path, stop: &'a CancellationToken) -> Tree<'a> {
        Tree {
            root,
            stop,
            made: HashSet::from([PathBuf::new()]),
            directories: Vec::new(),
            umask: umask(),
            buffer: vec![0; WRITE_BUFFER],
            unpacked: Unpacked::default(),
        }
    }

    /// Writes every entry of the tar stream, then the directories' modes and mtimes.
    fn write(mut self, stream: &mut Chunks, archive: &Path) -> Result<Unpacked, DriverError> {
        let reading = || DriverError::io(format!("reading {}", archive.display()));
        let mut tar = tar::Archive::new(stream);
        for entry in tar.entries().map_err(reading())? {
            if self.stop.is_cancelled() {
                return Err(DriverError::Cancelled);
            }
            let mut entry = entry.map_err(reading())?;
            let rel = {
                let path = entry.path().map_err(reading())?;
                relative(&path).map_err(|problem| {
                    DriverError::Failed(format!(
                        "{}: refusing the entry {}: {problem}",
                        archive.display(),
                        path.display()
                    ))
                })?
            };
            if rel.as_os_str().is_empty() {
                // `./`: the root itself, which the caller chose.
                continue;
            }
            let header = entry.header();
            let kind = header.entry_type();
            let mode = header.mode().map_err(reading())? & 0o7777;
            let mtime = header.mtime().map_err(reading())?;
            let size = header.size().map_err(reading())?;
            self.parents(&rel)?;
            if kind.is_dir() {
                self.directory(&rel, mode, mtime)?;
            } else if kind.is_file() {
                self.file(&rel, &mut entry, size, mode, mtime, archive)?;
            } else if kind.is_symlink() {
                let Some(target) = entry.link_name().map_err(reading())? else {
                    return Err(DriverError::Failed(format!(
                        "{}: the symbolic link {} has no target",
                        archive.display(),
                        rel.display()
                    )));
                };
                self.symlink(&rel, &target, mtime)?;
            } else {
                return Err(DriverError::Failed(format!(
                    "{}: {} is a {kind:?} entry, which a restore does not create",
                    archive.display(),
                    rel.display()
                )));
            }
        }
        self.finish_directories()?;
        Ok(self.unpacked)
    }

    /// Makes sure every directory above `rel` is one this unpacking made; creates the missing
    /// ones (an archive of ours lists every directory before its contents, so this only creates
    /// something for archives that do not).
    fn parents(&mut self, rel: &Path) -> Result<(), DriverError> {
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        if self.made.contains(parent) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for part in parent.components() {
            prefix.push(part);
            if !self.made.contains(&prefix) {
                self.make_directory(&prefix, 0o777)?;
            }
        }
        Ok(())
    }

    /// Creates the directory `rel` (or accepts a real directory already there, never a link).
    fn make_directory(&mut self, rel: &Path, mode: u32) -> Result<(), DriverError> {
        let path = self.root.join(rel);
        match DirBuilder::new().mode(mode).create(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let existing = fs::symlink_metadata(&path).map_err(self.writing(rel))?;
                if !existing.is_dir() {
                    return Err(DriverError::Failed(format!(
                        "restoring into {}: {} is in the way of a directory (a symbolic link or a file)",
                        self.root.display(),
                        rel.display()
                    )));
                }
            }
            Err(e) => return Err(self.writing(rel)(e)),
        }
        self.made.insert(rel.to_path_buf());
        Ok(())
    }

    fn directory(&mut self, rel: &Path, mode: u32, mtime: u64) -> Result<(), DriverError> {
        if !self.made.contains(rel) {
            // Writable and searchable while its contents are written; its own mode at the end.
            self.make_directory(rel, 0o700)?;
            self.unpacked.directories += 1;
        }
        self.directories.push((rel.to_path_buf(), mode, mtime));
        Ok(())
    }

    fn file(
        &mut self,
        rel: &Path,
        body: &mut impl Read,
        size: u64,
        mode: u32,
        mtime: u64,
        archive: &Path,
    ) -> Result<(), DriverError> {
        let path = self.root.join(rel);
        let create = |path: &Path| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode & 0o777)
                .open(path)
        };
        let mut file = match create(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_in_the_way(rel)?;
                create(&path)
            }
            created => created,
        }
        .map_err(self.writing(rel))?;
        let mut left = size;
        let mut unchecked = 0u64;
        while left > 0 {
            let want = left.min(self.buffer.len() as u64) as usize;
            let mut filled = 0;
            while filled < want {
                match body.read(&mut self.buffer[filled..want]) {
                    Ok(0) => {
                        return Err(DriverError::Failed(format!(
                            "reading {}: the archive ends inside {}",
                            archive.display(),
                            rel.display()
                        )));
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(DriverError::io(format!("reading {}", archive.display()))(e)),
                }
            }
            file.write_all(&self.buffer[..filled]).map_err(self.writing(rel))?;
            left -= filled as u64;
            unchecked += filled as u64;
            if unchecked >= CHECK_EVERY {
                unchecked = 0;
                if self.stop.is_cancelled() {
                    return Err(DriverError::Cancelled);
                }
            }
        }
        // Set after the write, which clears setuid and setgid bits.
        if mode & 0o7000 != 0 || mode & self.umask != 0 {
            file.set_permissions(fs::Permissions::from_mode(mode))
                .map_err(self.writing(rel))?;
        }
        file.set_times(FileTimes::new().set_modified(UNIX_EPOCH + Duration::from_secs(mtime)))
            .map_err(self.writing(rel))?;
        self.unpacked.files += 1;
        self.unpacked.bytes += size;
        Ok(())
    }

    fn symlink(&mut self, rel: &Path, target: &Path, mtime: u64) -> Result<(), DriverError> {
        let path = self.root.join(rel);
        match std::os::unix::fs::symlink(target, &path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                self.remove_in_the_way(rel)?;
                std::os::unix::fs::symlink(target, &path)
            }
            created => created,
        }
        .map_err(self.writing(rel))?;
        set_mtime(&path, mtime, UtimensatFlags::NoFollowSymlink).map_err(self.writing(rel))?;
        self.unpacked.symlinks += 1;
        Ok(())
    }

    /// A later entry of the same name replaces a file or link, never a directory.
    fn remove_in_the_way(&self, rel: &Path) -> Result<(), DriverError> {
        if self.made.contains(rel) {
            return Err(DriverError::Failed(format!(
                "restoring into {}: the archive holds {} both as a directory and as a file or link",
                self.root.display(),
                rel.display()
            )));
        }
        fs::remove_file(self.root.join(rel)).map_err(self.writing(rel))
    }

    /// The directories' modes and mtimes, deepest first: children before their parents (a
    /// parent made read-only or unsearchable first would refuse them).
    fn finish_directories(&mut self) -> Result<(), DriverError> {
        let mut directories = std::mem::take(&mut self.directories);
        directories.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, mode, mtime) in directories {
            let path = self.root.join(&rel);
            set_mtime(&path, mtime, UtimensatFlags::NoFollowSymlink).map_err(self.writing(&rel))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(self.writing(&rel))?;
        }
        Ok(())
    }

    fn writing(&self, rel: &Path) -> impl FnOnce(io::Error) -> DriverError + use<> {
        DriverError::io(format!("restoring {}", self.root.join(rel).display()))
    }
}

/// The entry's path inside the tree: `.` components dropped; absolute paths and `..` refused.
fn relative(path: &Path) -> Result<PathBuf, &'static str> {
    let mut rel = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::Normal(part) => rel.push(part),
            Component::ParentDir => return Err("it leads out of the tree (`..`)"),
            Component::RootDir | Component::Prefix(_) => return Err("it is an absolute path"),
        }
    }
    Ok(rel)
}

/// Sets `path`'s mtime (whole seconds), leaving its atime alone.
fn set_mtime(path: &Path, mtime: u64, follow: UtimensatFlags) -> io::Result<()> {
    let seconds = i64::try_from(mtime).unwrap_or(i64::MAX);
    utimensat(
        AT_FDCWD,
        path,
        &TimeSpec::UTIME_OMIT,
        &TimeSpec::new(seconds, 0),
        follow,
    )
    .map_err(io::Error::from)
}

/// The process's umask, from `/proc/self/status` (reading it with `umask(2)` would change it
/// for a moment, for every thread). When it cannot be read, every file gets an explicit chmod.
fn umask() -> u32 {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|value| u32::from_str_radix(value.trim(), 8).ok())
        })
        .unwrap_or(0o777)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// A zstd-compressed tar stream of the entries `build` appends, written to `dir/name`.
    fn archive(dir: &Path, name: &str, build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> PathBuf {
        let mut tar = tar::Builder::new(Vec::new());
        build(&mut tar);
        let bytes = tar.into_inner().unwrap();
        let path = dir.join(name);
        let mut encoder = zstd::Encoder::new(File::create(&path).unwrap(), 3).unwrap();
        encoder.include_checksum(true).unwrap();
        encoder.write_all(&bytes).unwrap();
        encoder.finish().unwrap();
        path
    }

    /// A header with every numeric field set (a bare GNU header's are empty, which the
    /// parser refuses).
    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_size(size);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header
    }

    fn file_header(size: u64) -> tar::Header {
        header(tar::EntryType::Regular, 0o644, size)
    }

    /// Appends a file under a raw name, which `tar::Builder` would refuse to write.
    fn append_raw(tar: &mut tar::Builder<Vec<u8>>, name: &[u8], body: &[u8]) {
        let mut header = file_header(body.len() as u64);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_cksum();
        tar.append(&header, body).unwrap();
    }

    #[test]
    fn an_entry_through_a_symbolic_link_in_the_archive_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        fs::create_dir(&outside).unwrap();
        let archive = archive(dir.path(), "evil.tar.zst", |tar| {
            let mut link = header(tar::EntryType::Symlink, 0o777, 0);
            tar.append_link(&mut link, "escape", &outside).unwrap();
            tar.append_data(&mut file_header(5), "escape/owned.txt", &b"owned"[..])
                .unwrap();
        });
        let into = dir.path().join("into");

        let error = unpack(&archive, &into, &CancellationToken::new())
            .unwrap_err()
            .to_string();

        assert!(error.contains("escape") && error.contains("in the way"), "{error}");
        assert_eq!(
            fs::read_dir(&outside).unwrap().count(),
            0,
            "nothing written through the link"
        );
    }

    #[test]
    fn entries_leading_out_of_the_tree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        for (name, problem) in [
            (&b"a/../../escape.txt"[..], "`..`"),
            (&b"/tmp/steward-absolute.txt"[..], "absolute"),
        ] {
            let archive = archive(dir.path(), "evil.tar.zst", |tar| append_raw(tar, name, b"x"));
            let into = dir.path().join("into");

            let error = unpack(&archive, &into, &CancellationToken::new())
                .unwrap_err()
                .to_string();

            assert!(
                error.contains("refusing the entry") && error.contains(problem),
                "{error}"
            );
            assert!(!dir.path().join("escape.txt").exists());
            assert!(!Path::new("/tmp/steward-absolute.txt").exists());
            fs::remove_dir_all(&into).unwrap();
        }
    }

    #[test]
    fn entry_kinds_a_backup_never_writes_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(dir.path(), "link.tar.zst", |tar| {
            tar.append_data(&mut file_header(1), "a.txt", &b"a"[..]).unwrap();
            let mut link = header(tar::EntryType::Link, 0o644, 0);
            tar.append_link(&mut link, "hard", "a.txt").unwrap();
        });

        let error = unpack(&archive, &dir.path().join("into"), &CancellationToken::new())
            .unwrap_err()
            .to_string();

        assert!(error.contains("hard is a Link entry"), "{error}");
    }

    /// The tar stream ends (two zero blocks) before the zstd frame does: a checksum that does
    /// not match must still fail the unpacking, though every entry was intact.
    #[test]
    fn a_damaged_checksum_after_the_last_entry_fails_the_unpacking() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(dir.path(), "files.tar.zst", |tar| {
            tar.append_data(&mut file_header(5), "a.txt", &b"hello"[..]).unwrap();
        });
        let into = dir.path().join("into");
        let unpacked = unpack(&archive, &into, &CancellationToken::new()).unwrap();
        assert_eq!((unpacked.files, unpacked.bytes), (1, 5));
        fs::remove_dir_all(&into).unwrap();
        // zstd's frame ends with the 4-byte checksum of the content.
        let mut bytes = fs::read(&archive).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&archive, &bytes).unwrap();

        let error = unpack(&archive, &into, &CancellationToken::new())
            .unwrap_err()
            .to_string();

        assert!(error.contains("reading") && error.contains("files.tar.zst"), "{error}");
    }

    #[test]
    fn a_file_with_the_setuid_bit_and_a_read_only_directory_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let archive = archive(dir.path(), "files.tar.zst", |tar| {
            let mut locked = header(tar::EntryType::Directory, 0o555, 0);
            locked.set_mtime(1_000_000_000);
            tar.append_data(&mut locked, "locked", io::empty()).unwrap();
            let mut setuid = file_header(2);
            setuid.set_mode(0o4755);
            setuid.set_mtime(1_100_000_000);
            tar.append_data(&mut setuid, "locked/tool", &b"#!"[..]).unwrap();
        });
        let into = dir.path().join("into");

        unpack(&archive, &into, &CancellationToken::new()).unwrap();

        let tool = fs::metadata(into.join("locked/tool")).unwrap();
        assert_eq!(tool.permissions().mode() & 0o7777, 0o4755);
        assert_eq!(
            tool.modified().unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_100_000_000)
        );
        let locked = fs::metadata(into.join("locked")).unwrap();
        assert_eq!(locked.permissions().mode() & 0o7777, 0o555);
        assert_eq!(
            locked.modified().unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_000_000_000)
        );
        fs::set_permissions(into.join("locked"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn the_stream_is_read_across_chunks() {
        let (chunks, received) = mpsc::sync_channel(4);
        let (recycle, _recycled) = mpsc::sync_channel(4);
        chunks.send(Ok((b"hello xx".to_vec(), 6))).unwrap();
        chunks.send(Ok((b"world".to_vec(), 5))).unwrap();
        drop(chunks);
        let mut stream = Chunks {
            received,
            recycle,
            current: Vec::new(),
            start: 0,
            end: 0,
        };
        let mut all = Vec::new();
        io::copy(&mut stream, &mut Cursor::new(&mut all)).unwrap();
        assert_eq!(all, b"hello world");
    }
}
