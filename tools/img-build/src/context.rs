//! The build context: which files go in (walking the tree with the `.dockerignore`
//! decisions) and the deterministic tar stream made of them.
//!
//! The tar is written twice per build: once into a hasher (the content digest decides
//! whether a build is needed at all), once into the request body. Neither pass holds more
//! than one buffer of it in memory.

use crate::dockerignore::{MatchInfo, PatternMatcher};
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use tokio::sync::mpsc;

/// The modification time written for every entry, so that the bytes depend on content only.
pub const FIXED_MTIME: u64 = 0;

/// Where an entry's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A directory.
    Dir,
    /// A regular file, read when the tar is written.
    File(PathBuf),
    /// A symbolic link to this target (kept as a link, never followed).
    Symlink(PathBuf),
    /// Bytes made by img-build (a rewritten `.dockerignore`, a Dockerfile from outside
    /// the context).
    Bytes(Vec<u8>),
}

/// One entry of the context tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path inside the tar, slash-separated, relative, as raw bytes.
    pub name: Vec<u8>,
    /// Permission bits (`0o7777` of the mode).
    pub mode: u32,
    pub source: Source,
}

impl Entry {
    /// The name as text (lossy), for messages and matching.
    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

/// Walks `root` in Docker's order (each directory's names sorted by bytes), keeping what the
/// matcher does not exclude, skipping excluded directories the way the docker CLI does.
/// Sockets, FIFOs and device files are left out, as Docker leaves sockets out.
pub fn walk(root: &Path, matcher: &PatternMatcher) -> io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    walk_dir(root, "", matcher, &MatchInfo::default(), &mut entries)?;
    Ok(entries)
}

fn walk_dir(
    dir: &Path,
    prefix: &str,
    matcher: &PatternMatcher,
    parent: &MatchInfo,
    entries: &mut Vec<Entry>,
) -> io::Result<()> {
    let mut children: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(|err| with_path(err, dir))?
        .collect::<io::Result<_>>()
        .map_err(|err| with_path(err, dir))?;
    children.sort_by(|a, b| a.file_name().as_bytes().cmp(b.file_name().as_bytes()));
    for child in children {
        let path = child.path();
        let file_name = child.file_name();
        let rel = format!("{prefix}{}", file_name.to_string_lossy());
        let mut name = prefix.as_bytes().to_vec();
        name.extend_from_slice(file_name.as_bytes());
        let meta = fs::symlink_metadata(&path).map_err(|err| with_path(err, &path))?;
        let kind = meta.file_type();
        let (excluded, info) = matcher.matches_using_parent_results(&rel, parent);
        if excluded {
            if kind.is_dir() && matcher.must_walk_excluded_dir(&rel) {
                walk_dir(&path, &format!("{rel}/"), matcher, &info, entries)?;
            }
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if kind.is_dir() {
            entries.push(Entry {
                name,
                mode,
                source: Source::Dir,
            });
            walk_dir(&path, &format!("{rel}/"), matcher, &info, entries)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(|err| with_path(err, &path))?;
            entries.push(Entry {
                name,
                mode,
                source: Source::Symlink(target),
            });
        } else if kind.is_file() {
            entries.push(Entry {
                name,
                mode,
                source: Source::File(path),
            });
        } else if kind.is_socket()
            || kind.is_fifo()
            || kind.is_block_device()
            || kind.is_char_device()
        {
            tracing::debug!("leaving out {rel}: not a file, directory or symlink");
        }
    }
    Ok(())
}

fn with_path(err: io::Error, path: &Path) -> io::Error {
    io::Error::new(err.kind(), format!("{}: {err}", path.display()))
}

/// Writes `entries` as a tar to `out`: entries in the given order, mtime [`FIXED_MTIME`],
/// uid/gid 0, no user or group names, modes kept, symlinks as symlinks. Returns the number of
/// bytes written. A file that changes size while it is read is an error.
pub fn write_tar<W: Write>(entries: &[Entry], out: W) -> io::Result<u64> {
    let mut builder = tar::Builder::new(CountingWriter {
        inner: out,
        count: 0,
    });
    for entry in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(entry.mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(FIXED_MTIME);
        let name = Path::new(std::ffi::OsStr::from_bytes(&entry.name));
        match &entry.source {
            Source::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                builder.append_data(&mut header, name, io::empty())?;
            }
            Source::Symlink(target) => {
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                builder.append_link(&mut header, name, target)?;
            }
            Source::Bytes(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(bytes.len() as u64);
                builder.append_data(&mut header, name, bytes.as_slice())?;
            }
            Source::File(path) => {
                let file = File::open(path).map_err(|err| with_path(err, path))?;
                let size = file.metadata().map_err(|err| with_path(err, path))?.len();
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                let reader = ExactReader {
                    inner: file.take(size),
                    remaining: size,
                    path,
                };
                builder.append_data(&mut header, name, reader)?;
            }
        }
    }
    let counting = builder.into_inner()?;
    Ok(counting.count)
}

/// Reads exactly the size announced in the header, or fails: a file that shrank while it
/// was read would otherwise corrupt the archive.
struct ExactReader<'a> {
    inner: io::Take<File>,
    remaining: u64,
    path: &'a Path,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && self.remaining > 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} changed while the context was read", self.path.display()),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that hashes what it is given (the context digest).
#[derive(Default)]
pub struct HashingWriter {
    hasher: Sha256,
}

impl HashingWriter {
    /// The sha256 of everything written, as lowercase hex.
    pub fn finish(self) -> String {
        hex(&self.hasher.finalize())
    }
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The size of the chunks sent to the Engine; the channel holds a few of them, so the
/// memory a build needs does not grow with the context.
pub const CHUNK: usize = 256 * 1024;

/// A writer that sends what it is given, in [`CHUNK`]-sized pieces, down a bounded channel
/// (blocking when the Engine reads slower than the disk). Use from a blocking thread.
pub struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub fn new(tx: mpsc::Sender<io::Result<Bytes>>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        }
    }

    fn send_buffer(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the Engine stopped reading the context",
            )
        })
    }

    /// Sends an error down the channel, so that the request fails instead of ending early.
    pub fn fail(self, err: io::Error) {
        let _ = self.tx.blocking_send(Err(err));
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(buf);
        if self.buf.len() >= CHUNK {
            self.send_buffer()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send_buffer()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockerignore::read_patterns;
    use std::os::unix::fs::symlink;

    fn names(entries: &[Entry]) -> Vec<String> {
        entries.iter().map(Entry::name_lossy).collect()
    }

    fn tree() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src/nested")).unwrap();
        fs::create_dir_all(root.join("docs")).unwrap();
        fs::write(root.join("Dockerfile"), "FROM scratch\n").unwrap();
        fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        fs::write(root.join("src/nested/x.log"), "log\n").unwrap();
        fs::write(root.join("docs/keep.md"), "keep\n").unwrap();
        fs::write(root.join("docs/drop.md"), "drop\n").unwrap();
        fs::write(root.join("a-b"), "dash\n").unwrap();
        symlink("src/main.rs", root.join("link")).unwrap();
        dir
    }

    #[test]
    fn the_walk_is_sorted_and_follows_the_dockerignore() {
        let dir = tree();
        let matcher = PatternMatcher::new(&read_patterns("**/*.log\ndocs\n!docs/keep.md")).unwrap();
        let entries = walk(dir.path(), &matcher).unwrap();
        assert_eq!(
            names(&entries),
            [
                "Dockerfile",
                "a-b",
                "docs/keep.md",
                "link",
                "src",
                "src/main.rs",
                "src/nested"
            ]
        );
        let link = entries.iter().find(|e| e.name == b"link").unwrap();
        assert_eq!(link.source, Source::Symlink("src/main.rs".into()));
    }

    #[test]
    fn the_tar_is_deterministic_and_normalised() {
        let dir = tree();
        let entries = walk(dir.path(), &PatternMatcher::default()).unwrap();
        let mut first = Vec::new();
        let size = write_tar(&entries, &mut first).unwrap();
        assert_eq!(size, first.len() as u64);
        // Touching a file changes its mtime, not the bytes.
        std::thread::sleep(std::time::Duration::from_millis(10));
        fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let mut second = Vec::new();
        write_tar(&entries, &mut second).unwrap();
        assert_eq!(first, second);

        let mut archive = tar::Archive::new(first.as_slice());
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), FIXED_MTIME);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            assert!(header.username().unwrap().unwrap_or("").is_empty());
            if entry.path().unwrap().as_os_str() == "link" {
                assert_eq!(header.entry_type(), tar::EntryType::Symlink);
                assert_eq!(
                    entry.link_name().unwrap().unwrap().as_os_str(),
                    "src/main.rs"
                );
            }
        }
    }

    #[test]
    fn modes_are_kept() {
        let dir = tree();
        let script = dir.path().join("run.sh");
        fs::write(&script, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o750)).unwrap();
        let entries = walk(dir.path(), &PatternMatcher::default()).unwrap();
        let mut bytes = Vec::new();
        write_tar(&entries, &mut bytes).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mode = archive
            .entries()
            .unwrap()
            .map(Result::unwrap)
            .find(|e| e.path().unwrap().as_os_str() == "run.sh")
            .unwrap()
            .header()
            .mode()
            .unwrap();
        assert_eq!(mode, 0o750);
    }

    #[test]
    fn hex_is_lowercase() {
        assert_eq!(hex(&[0x00, 0xab, 0x5f]), "00ab5f");
    }
}
