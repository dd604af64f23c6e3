//! Messages the exporter could not decode, kept verbatim as JSON under `quarantine/` so that
//! nothing the CDC stream delivered is lost and an operator can inspect or replay it.

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::layout;
use super::{Lake, LakeError};
use crate::timefmt::rfc3339;

/// An undecodable message, with everything AMQP delivered about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub received_ns: u64,
    pub reason: String,
    pub exchange: String,
    pub routing_key: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A quarantined message as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineInfo {
    pub path: Path,
    pub received_ns: u64,
    pub bytes: u64,
    pub reason: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    name: String,
    value: String,
}

/// The JSON shape (documented in schemas/lake.md). `received_ns` is a decimal string because
/// JSON numbers above 2^53 lose precision in most parsers. The body is `body_utf8` when it is
/// valid UTF-8 (readable with jq), otherwise `body_hex`, so any bytes survive.
#[derive(Serialize, Deserialize)]
struct QuarantineJson {
    received_ns: String,
    received_at: String,
    reason: String,
    exchange: String,
    routing_key: String,
    headers: Vec<Header>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    body_utf8: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    body_hex: Option<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub fn to_json(q: &Quarantined) -> Vec<u8> {
    let (body_utf8, body_hex) = match std::str::from_utf8(&q.body) {
        Ok(s) => (Some(s.to_string()), None),
        Err(_) => (None, Some(hex(&q.body))),
    };
    let json = QuarantineJson {
        received_ns: q.received_ns.to_string(),
        received_at: rfc3339(q.received_ns),
        reason: q.reason.clone(),
        exchange: q.exchange.clone(),
        routing_key: q.routing_key.clone(),
        headers: q
            .headers
            .iter()
            .map(|(name, value)| Header {
                name: name.clone(),
                value: value.clone(),
            })
            .collect(),
        body_utf8,
        body_hex,
    };
    let mut out = serde_json::to_vec_pretty(&json).expect("plain struct serializes");
    out.push(b'\n');
    out
}

pub fn from_json(bytes: &[u8]) -> Result<Quarantined, String> {
    let j: QuarantineJson = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let body = match (j.body_utf8, j.body_hex) {
        (Some(s), None) => s.into_bytes(),
        (None, Some(h)) => unhex(&h).ok_or("body_hex is not hexadecimal")?,
        _ => return Err("exactly one of body_utf8 and body_hex must be present".into()),
    };
    Ok(Quarantined {
        received_ns: j
            .received_ns
            .parse()
            .map_err(|_| format!("received_ns {:?} is not a decimal u64", j.received_ns))?,
        reason: j.reason,
        exchange: j.exchange,
        routing_key: j.routing_key,
        headers: j.headers.into_iter().map(|h| (h.name, h.value)).collect(),
        body,
    })
}

impl Lake {
    /// Stores an undecodable message under `quarantine/`; returns its path.
    pub async fn quarantine(&self, q: &Quarantined) -> Result<Path, LakeError> {
        let json = to_json(q);
        for seq in 0..layout::QUARANTINE_SEQ_LIMIT {
            let path = layout::quarantine_path(q.received_ns, seq);
            if self.put_create(&path, json.clone()).await? {
                return Ok(path);
            }
        }
        Err(LakeError::corrupt(
            &layout::quarantine_path(q.received_ns, 0),
            "a million messages quarantined with the same receive time",
        ))
    }

    /// Every quarantined message, oldest first.
    pub async fn list_quarantine(&self) -> Result<Vec<QuarantineInfo>, LakeError> {
        let mut objects = self.list(Some(&layout::quarantine_dir())).await?;
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let mut out = Vec::with_capacity(objects.len());
        for o in objects {
            let Some((received_ns, _seq)) = layout::parse_quarantine_path(&o.location) else {
                return Err(LakeError::BadObjectName {
                    path: o.location.to_string(),
                });
            };
            let q = self.read_quarantined(&o.location).await?;
            out.push(QuarantineInfo {
                path: o.location,
                received_ns,
                bytes: o.size,
                reason: q.reason,
            });
        }
        Ok(out)
    }

    /// One quarantined message, as it was stored.
    pub async fn read_quarantined(&self, path: &Path) -> Result<Quarantined, LakeError> {
        let bytes = self.get(path).await?;
        from_json(&bytes).map_err(|r| LakeError::corrupt(path, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(body: &[u8]) -> Quarantined {
        Quarantined {
            received_ns: u64::MAX,
            reason: "amount: not a number".into(),
            exchange: "tigerbeetle".into(),
            routing_key: "".into(),
            headers: vec![
                ("event_type".into(), "single_phase".into()),
                ("event_type".into(), "duplicate kept".into()),
            ],
            body: body.to_vec(),
        }
    }

    #[test]
    fn utf8_body_is_readable() {
        let q = sample(br#"{"amount":"x"}"#);
        let json = to_json(&q);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["body_utf8"], r#"{"amount":"x"}"#);
        assert!(v.get("body_hex").is_none());
        assert_eq!(v["received_ns"], "18446744073709551615");
        assert_eq!(v["received_at"], "2554-07-21T23:34:33.709551615Z");
        assert_eq!(v["headers"][1]["value"], "duplicate kept");
        assert_eq!(from_json(&json), Ok(q));
    }

    #[test]
    fn binary_body_survives_as_hex() {
        let q = sample(&[0xff, 0x00, 0xfe, b'a']);
        let json = to_json(&q);
        let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["body_hex"], "ff00fe61");
        assert!(v.get("body_utf8").is_none());
        assert_eq!(from_json(&json), Ok(q));
        assert_eq!(from_json(&to_json(&sample(b""))), Ok(sample(b"")));
    }

    #[test]
    fn bad_hex_is_refused() {
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("éé"), None);
    }
}
