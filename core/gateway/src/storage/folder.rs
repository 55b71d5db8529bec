//! A storage area in a folder on the gateway's machine: `cloudkeep-repo`'s `FolderStore`
//! (packs and objects written atomically, owner-only), with an upload as a locked temporary
//! file that is flushed and renamed into place when complete.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use cloudkeep_repo::backend::folder::FolderStore;
use cloudkeep_repo::backend::{MetaKind, StoreError};
use cloudkeep_repo::pack::PackId;

use super::{AreaStore, PackUpload};

/// An upload into a temporary file of the folder.
struct FileUpload {
    store: FolderStore,
    id: PackId,
    path: PathBuf,
    file: File,
}

impl PackUpload for FileUpload {
    fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        self.file.write_all(bytes).map_err(|source| StoreError::Io {
            path: self.path.clone(),
            source,
        })
    }

    fn finish(self: Box<Self>) -> Result<(), StoreError> {
        let Self {
            store,
            id,
            path,
            file,
        } = *self;
        if let Err(source) = file.sync_all() {
            let _ = std::fs::remove_file(&path);
            return Err(StoreError::Io { path, source });
        }
        drop(file);
        store.adopt_pack(&id, &path)
    }

    fn abort(self: Box<Self>) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

impl AreaStore for FolderStore {
    fn begin_upload(
        &self,
        reservation: &str,
        id: &PackId,
    ) -> Result<Box<dyn PackUpload>, StoreError> {
        let (path, file) = self.upload_file(reservation)?;
        Ok(Box::new(FileUpload {
            store: self.clone(),
            id: *id,
            path,
            file,
        }))
    }

    fn remove_upload(&self, reservation: &str) -> Result<u64, StoreError> {
        FolderStore::remove_upload(self, reservation)
    }

    fn remove_leftovers(&self, age: std::time::Duration) -> Result<u64, StoreError> {
        FolderStore::remove_leftovers(self, age)
    }

    fn pack_matches_id(&self, id: &PackId) -> Result<Option<bool>, StoreError> {
        FolderStore::pack_matches_id(self, id)
    }

    fn pack_modified(&self, id: &PackId) -> Option<std::time::SystemTime> {
        FolderStore::pack_modified(self, id)
    }

    fn has_meta(&self, kind: MetaKind, name: &str) -> Result<bool, StoreError> {
        Ok(FolderStore::has_meta(self, kind, name))
    }

    fn read_concat(
        &self,
        ranges: &[(PackId, u64, u64)],
        total: u64,
    ) -> Result<Vec<u8>, StoreError> {
        FolderStore::read_concat(self, ranges, total)
    }

    fn remove_all(&self) -> Result<(), StoreError> {
        self.close_readers();
        let root = self.root().to_path_buf();
        match std::fs::remove_dir_all(&root) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::Io { path: root, source }),
        }
    }
}
