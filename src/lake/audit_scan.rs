//! Reading one segment for an audit: its rows together with what each file's metadata says
//! (format version, cluster), so that `verify` can report every disagreement instead of
//! trusting the first check that passes.

use super::parquet::FileMeta;
use super::{AccountRecord, EventRow, Lake, LakeError, SegmentInfo, SweptInfo};

/// The `ledgerlake.*` metadata an auditor checks, from one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditedFileMeta {
    pub format_version: u32,
    pub cluster_id: u128,
    pub row_count: u64,
}

/// One segment, read whole and checked like `Lake::read_events` does (schema, metadata against
/// name and contents, rows strictly increasing).
#[derive(Debug, Clone)]
pub struct AuditedSegment {
    pub transfers_meta: AuditedFileMeta,
    pub events: Vec<EventRow>,
    /// `None` if the segment has no accounts file.
    pub accounts_meta: Option<AuditedFileMeta>,
    pub accounts: Vec<AccountRecord>,
}

impl From<&FileMeta> for AuditedFileMeta {
    fn from(meta: &FileMeta) -> Self {
        AuditedFileMeta {
            format_version: meta.format_version,
            cluster_id: meta.cluster_id,
            row_count: meta.row_count,
        }
    }
}

impl Lake {
    /// Reads a segment's transfers file and, if present, its accounts file.
    pub async fn read_segment_audited(
        &self,
        seg: &SegmentInfo,
    ) -> Result<AuditedSegment, LakeError> {
        let (transfers_meta, events) = self.read_events_checked(seg).await?;
        let (accounts_meta, accounts) = match self.read_accounts_checked(seg).await? {
            Some((meta, accounts)) => (Some(AuditedFileMeta::from(&meta)), accounts),
            None => (None, Vec::new()),
        };
        Ok(AuditedSegment {
            transfers_meta: AuditedFileMeta::from(&transfers_meta),
            events,
            accounts_meta,
            accounts,
        })
    }

    /// Reads a swept accounts file, checked like `Lake::read_swept` but without the cluster
    /// check, which the auditor reports itself.
    pub async fn read_swept_audited(
        &self,
        file: &SweptInfo,
    ) -> Result<(AuditedFileMeta, Vec<AccountRecord>), LakeError> {
        let (meta, accounts) = self.read_swept_checked(file).await?;
        Ok((AuditedFileMeta::from(&meta), accounts))
    }
}
