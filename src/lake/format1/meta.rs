//! `_ledgerlake.json` as format 1 wrote it (`{"format_version", "cluster_id", "created_by"}`,
//! the cluster id a decimal string), parsed whatever version it names: format 2 keeps the same
//! shape, so the same parser tells an upgrade which format a lake is in.

use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::layout;
use super::{Format1Error, Format1Lake};

/// What `_ledgerlake.json` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaFile {
    pub format_version: u32,
    pub cluster_id: u128,
}

#[derive(Serialize, Deserialize)]
struct MetaJson {
    format_version: u32,
    cluster_id: String,
    #[serde(default)]
    created_by: String,
}

/// The file's bytes for `meta` (pretty JSON, a final newline, as format 1 wrote it).
pub fn to_json(meta: &MetaFile) -> Vec<u8> {
    let json = MetaJson {
        format_version: meta.format_version,
        cluster_id: meta.cluster_id.to_string(),
        created_by: format!("ledgerlake {}", env!("CARGO_PKG_VERSION")),
    };
    let mut out = serde_json::to_vec_pretty(&json).expect("plain struct serializes");
    out.push(b'\n');
    out
}

/// Parses the metadata file; `Err` carries the reason it is corrupt.
pub fn from_json(bytes: &[u8]) -> Result<MetaFile, String> {
    let json: MetaJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let cluster_id = json
        .cluster_id
        .parse::<u128>()
        .map_err(|_| format!("cluster_id {:?} is not a decimal u128", json.cluster_id))?;
    Ok(MetaFile {
        format_version: json.format_version,
        cluster_id,
    })
}

impl Format1Lake {
    /// The metadata file, or `None` if the lake has none.
    pub async fn read_meta(&self) -> Result<Option<MetaFile>, Format1Error> {
        let path = layout::meta_path();
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| Format1Error::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(Format1Error::store(&path, e)),
        };
        from_json(&bytes)
            .map(Some)
            .map_err(|r| Format1Error::corrupt(&path, r))
    }

    /// Replaces the metadata file with `meta`: the one object of a lake that is ever
    /// overwritten, by `ledgerlake upgrade` once the new format holds everything. One PUT: on
    /// S3 an object is replaced atomically (a reader gets the old bytes or the new, never a
    /// mix); on a local disk object_store writes a temporary file beside it, fsyncs it and
    /// renames it over the old one (atomic on POSIX file systems). So a crash leaves either
    /// file whole, and the caller's rerun writes the same bytes again.
    pub async fn replace_meta(&self, meta: &MetaFile) -> Result<(), Format1Error> {
        let path = layout::meta_path();
        self.store
            .put(&path, PutPayload::from(to_json(meta)))
            .await
            .map(|_| ())
            .map_err(|e| Format1Error::store(&path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_the_documented_shape() {
        let meta = MetaFile {
            format_version: 1,
            cluster_id: u128::MAX,
        };
        let bytes = to_json(&meta);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["format_version"], 1);
        assert_eq!(v["cluster_id"], u128::MAX.to_string());
        assert_eq!(from_json(&bytes), Ok(meta));
    }

    #[test]
    fn bad_files_are_refused() {
        assert!(from_json(b"").is_err());
        assert!(from_json(br#"{"format_version":1,"cluster_id":1}"#).is_err());
        assert!(from_json(br#"{"format_version":1,"cluster_id":"-1"}"#).is_err());
        assert!(from_json(
            br#"{"format_version":1,"cluster_id":"340282366920938463463374607431768211456"}"#
        )
        .is_err());
        assert!(from_json(br#"{"cluster_id":"1"}"#).is_err());
        // Any version parses: the caller decides.
        assert_eq!(
            from_json(br#"{"format_version":3,"cluster_id":"7"}"#).map(|m| m.format_version),
            Ok(3)
        );
    }
}
