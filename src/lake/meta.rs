//! `_ledgerlake.json`, the lake metadata file: which format the lake uses and which
//! TigerBeetle cluster it belongs to, so that two clusters are never mixed in one lake.

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::layout;
use super::{Lake, LakeError, FORMAT_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LakeMeta {
    pub format_version: u32,
    pub cluster_id: u128,
}

/// The JSON shape. `cluster_id` is a decimal string: JSON numbers lose precision above 2^53 in
/// most parsers, and a u128 is far above that.
#[derive(Serialize, Deserialize)]
struct MetaJson {
    format_version: u32,
    cluster_id: String,
    #[serde(default)]
    created_by: String,
}

pub fn created_by() -> String {
    format!("ledgerlake {}", env!("CARGO_PKG_VERSION"))
}

pub fn to_json(meta: &LakeMeta) -> Vec<u8> {
    let json = MetaJson {
        format_version: meta.format_version,
        cluster_id: meta.cluster_id.to_string(),
        created_by: created_by(),
    };
    let mut out = serde_json::to_vec_pretty(&json).expect("plain struct serializes");
    out.push(b'\n');
    out
}

/// Parses the metadata file; `Err` carries the reason it is corrupt. The format version is
/// returned as found (the caller decides whether it is supported).
pub fn from_json(bytes: &[u8]) -> Result<LakeMeta, String> {
    let json: MetaJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let cluster_id = json
        .cluster_id
        .parse::<u128>()
        .map_err(|_| format!("cluster_id {:?} is not a decimal u128", json.cluster_id))?;
    Ok(LakeMeta {
        format_version: json.format_version,
        cluster_id,
    })
}

pub fn new_meta(cluster_id: u128) -> LakeMeta {
    LakeMeta {
        format_version: FORMAT_VERSION,
        cluster_id,
    }
}

impl Lake {
    /// The lake metadata, or `None` for a lake never bound to a cluster.
    pub async fn read_meta(&self) -> Result<Option<LakeMeta>, LakeError> {
        let path = layout::meta_path();
        let bytes = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(|e| LakeError::store(&path, e))?,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(LakeError::store(&path, e)),
        };
        let meta = from_json(&bytes).map_err(|r| LakeError::corrupt(&path, r))?;
        if meta.format_version == 1 {
            return Err(LakeError::Format1 {
                location: self.location.clone(),
            });
        }
        if meta.format_version > FORMAT_VERSION {
            return Err(LakeError::UnsupportedFormat {
                found: meta.format_version,
                supported: FORMAT_VERSION,
            });
        }
        Ok(Some(meta))
    }

    /// Binds the lake to `cluster_id`, creating the metadata file if absent; refuses a lake
    /// that belongs to another cluster.
    pub async fn bind_cluster(&self, cluster_id: u128) -> Result<LakeMeta, LakeError> {
        let meta = match self.read_meta().await? {
            Some(meta) => meta,
            None => {
                let new = new_meta(cluster_id);
                if self.put_create(&layout::meta_path(), to_json(&new)).await? {
                    new
                } else {
                    // Another process bound it between our read and our write.
                    self.read_meta().await?.ok_or_else(|| {
                        LakeError::corrupt(&layout::meta_path(), "exists but cannot be read")
                    })?
                }
            }
        };
        if meta.cluster_id != cluster_id {
            return Err(LakeError::ClusterMismatch {
                lake: meta.cluster_id,
                requested: cluster_id,
            });
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_has_the_documented_shape() {
        let meta = new_meta(u128::MAX);
        let bytes = to_json(&meta);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["format_version"], FORMAT_VERSION);
        assert_eq!(v["cluster_id"], u128::MAX.to_string());
        assert_eq!(v["created_by"], created_by());
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
    }
}
