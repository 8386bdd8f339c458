//! Raw messages on disk, content-addressed by SHA-256, written durably
//! before any record points at them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{ErrorKind, Result};

/// The blob directory's name inside the data directory.
pub const BLOB_DIR: &str = "blobs";

/// A directory of immutable blobs named by the hex SHA-256 of their bytes.
/// A blob is stored once however many messages or accounts refer to it;
/// which account may read it is recorded in the database, not here.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

fn io(what: &str, path: &Path, e: std::io::Error) -> crate::Error {
    ErrorKind::Backend(format!("{what} {}: {e}", path.display())).into()
}

/// Whether `id` is a well-formed blob id: exactly 64 lowercase hex digits.
/// Checked before any path is built from it, so no id reaches outside the
/// blob directory.
pub fn valid_blob_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl BlobStore {
    /// Opens (creating) the blob directory under `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join(BLOB_DIR);
        fs::create_dir_all(root.join("tmp")).map_err(|e| io("create", &root, e))?;
        Ok(Self { root })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.root.join(&id[..2]).join(&id[2..4]).join(id)
    }

    /// Writes `bytes` and returns their id. When this returns, the blob is
    /// on stable storage: file contents and directory entry are synced.
    pub fn put(&self, bytes: &[u8]) -> Result<String> {
        let id = hex(&Sha256::digest(bytes));
        let path = self.path(&id);
        if path.exists() {
            return Ok(id);
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        fs::create_dir_all(&dir).map_err(|e| io("create", &dir, e))?;
        // Write to a unique temporary name, sync, then rename: a crash leaves
        // either no blob or a whole one, never a torn file under its id.
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{id}.{}", stormproof_types::random_id(6)));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| io("create", &tmp, e))?;
        file.write_all(bytes).map_err(|e| io("write", &tmp, e))?;
        file.sync_all().map_err(|e| io("sync", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| io("rename", &path, e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("sync", &dir, e))?;
        Ok(id)
    }

    /// Reads a blob, checking that its bytes still hash to its id.
    pub fn get(&self, id: &str) -> Result<Vec<u8>> {
        if !valid_blob_id(id) {
            return Err(ErrorKind::NotFound(format!("blob {id}")).into());
        }
        let path = self.path(id);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ErrorKind::NotFound(format!("blob {id}")).into());
            }
            Err(e) => return Err(io("read", &path, e)),
        };
        if hex(&Sha256::digest(&bytes)) != id {
            return Err(ErrorKind::Corrupt(format!("blob {id} does not match its hash")).into());
        }
        Ok(bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_detect_damage() {
        let dir = std::env::temp_dir().join(format!(
            "stormproof-blobs-{}",
            stormproof_types::random_id(6)
        ));
        let blobs = BlobStore::open(&dir).expect("open");
        let id = blobs.put(b"Subject: hi\r\n\r\nbody\r\n").expect("put");
        assert!(valid_blob_id(&id));
        assert_eq!(
            blobs
                .put(b"Subject: hi\r\n\r\nbody\r\n")
                .expect("put again"),
            id,
            "stored once"
        );
        assert_eq!(blobs.get(&id).expect("get"), b"Subject: hi\r\n\r\nbody\r\n");
        std::fs::write(blobs.path(&id), b"tampered").expect("tamper");
        assert!(matches!(
            blobs.get(&id).map_err(|e| e.kind),
            Err(ErrorKind::Corrupt(_))
        ));
        for bad in ["../../etc/passwd", "ABCD", &"g".repeat(64)] {
            assert!(
                matches!(
                    blobs.get(bad).map_err(|e| e.kind),
                    Err(ErrorKind::NotFound(_))
                ),
                "{bad}"
            );
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
