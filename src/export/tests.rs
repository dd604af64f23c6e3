//! The driver's own rules: which lake errors are retried, and for how long.

use super::*;
use std::sync::atomic::{AtomicU32, Ordering};

fn store_error(source: object_store::Error) -> LakeError {
    LakeError::Store {
        path: "transfers/x.parquet".into(),
        source,
    }
}

fn unreachable() -> LakeError {
    store_error(object_store::Error::Generic {
        store: "S3",
        source: "connection refused".into(),
    })
}

#[tokio::test]
async fn a_transient_lake_error_is_retried_until_the_write_succeeds() {
    let attempts = AtomicU32::new(0);
    let written = retry_lake_write(Duration::from_secs(60), None, || async {
        match attempts.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Err(unreachable()),
            _ => Ok(7),
        }
    })
    .await;
    assert_eq!(written.ok(), Some(7));
    assert_eq!(attempts.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_permanent_lake_error_fails_at_once_naming_the_position() {
    let attempts = AtomicU32::new(0);
    let written: Result<(), _> = retry_lake_write(Duration::from_secs(60), Some(42), || async {
        attempts.fetch_add(1, Ordering::SeqCst);
        Err(LakeError::Corrupt {
            path: "accounts/x.parquet".into(),
            reason: "re-created while being replaced".into(),
        })
    })
    .await;
    assert_eq!(attempts.load(Ordering::SeqCst), 1, "not retried");
    let error = written.expect_err("a permanent error");
    assert!(
        matches!(error, ExportError::LakeWriteRefused { .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains("permanent") && message.contains("timestamp 42"),
        "{message}"
    );
}

#[tokio::test]
async fn transient_errors_are_retried_for_at_most_the_limit() {
    let attempts = AtomicU32::new(0);
    let started = Instant::now();
    let written: Result<(), _> = retry_lake_write(Duration::from_millis(300), None, || async {
        attempts.fetch_add(1, Ordering::SeqCst);
        Err(unreachable())
    })
    .await;
    assert!(matches!(written, Err(ExportError::LakeWriteFailed { .. })));
    assert!(attempts.load(Ordering::SeqCst) >= 2, "retried");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the limit"
    );
}

#[test]
fn lake_errors_are_transient_as_object_store_classifies_them() {
    use object_store::Error as E;
    let path = || "transfers/x.parquet".to_string();
    let source = || -> Box<dyn std::error::Error + Send + Sync> { "503".into() };
    assert!(unreachable().is_transient());
    assert!(store_error(E::NotFound {
        path: path(),
        source: source()
    })
    .is_transient());
    for permanent in [
        E::AlreadyExists {
            path: path(),
            source: source(),
        },
        E::Precondition {
            path: path(),
            source: source(),
        },
        E::PermissionDenied {
            path: path(),
            source: source(),
        },
        E::Unauthenticated {
            path: path(),
            source: source(),
        },
    ] {
        assert!(!store_error(permanent).is_transient());
    }
    assert!(!LakeError::Corrupt {
        path: path(),
        reason: "second exporter?".into()
    }
    .is_transient());
    assert!(!LakeError::ClusterMismatch {
        lake: 1,
        requested: 2
    }
    .is_transient());
}
