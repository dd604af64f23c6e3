//! Reading a lake's segments in time order, several at a time: object-store latency is hidden
//! by reading ahead, while memory stays bounded to the segments in flight (each is at most the
//! exporter's `--segment-events-max` rows).

use futures::stream::{self, BoxStream, StreamExt};

use crate::lake::{AuditedSegment, Lake, LakeError, SegmentInfo};

/// Segments read ahead of the one being checked.
pub const SEGMENT_READS_IN_FLIGHT: usize = 4;

/// Every segment, in the given order, with its contents or the reason it cannot be read.
pub fn read_in_order<'a>(
    lake: &'a Lake,
    segments: &'a [SegmentInfo],
) -> BoxStream<'a, (&'a SegmentInfo, Result<AuditedSegment, LakeError>)> {
    stream::iter(segments)
        .map(move |seg| async move { (seg, lake.read_segment_audited(seg).await) })
        .buffered(SEGMENT_READS_IN_FLIGHT)
        .boxed()
}
