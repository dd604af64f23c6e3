//! Events counted by type: the one shape for what a workload produced, what a rebuild plan
//! replays and what its report prints.

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::EventType;

/// How many events of each type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventCounts {
    pub single_phase: u64,
    pub two_phase_pending: u64,
    pub two_phase_posted: u64,
    pub two_phase_voided: u64,
    pub two_phase_expired: u64,
}

impl EventCounts {
    /// Counts one more event of type `t`.
    pub fn add(&mut self, t: EventType) {
        *self.of_mut(t) += 1;
    }

    pub fn get(&self, t: EventType) -> u64 {
        match t {
            EventType::SinglePhase => self.single_phase,
            EventType::TwoPhasePending => self.two_phase_pending,
            EventType::TwoPhasePosted => self.two_phase_posted,
            EventType::TwoPhaseVoided => self.two_phase_voided,
            EventType::TwoPhaseExpired => self.two_phase_expired,
        }
    }

    pub fn total(&self) -> u64 {
        self.single_phase
            + self.two_phase_pending
            + self.two_phase_posted
            + self.two_phase_voided
            + self.two_phase_expired
    }

    fn of_mut(&mut self, t: EventType) -> &mut u64 {
        match t {
            EventType::SinglePhase => &mut self.single_phase,
            EventType::TwoPhasePending => &mut self.two_phase_pending,
            EventType::TwoPhasePosted => &mut self.two_phase_posted,
            EventType::TwoPhaseVoided => &mut self.two_phase_voided,
            EventType::TwoPhaseExpired => &mut self.two_phase_expired,
        }
    }
}

/// Each count and the total, as decimal strings (JSON parsers round numbers above 2^53).
impl Serialize for EventCounts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("EventCounts", 6)?;
        s.serialize_field("single_phase", &self.single_phase.to_string())?;
        s.serialize_field("two_phase_pending", &self.two_phase_pending.to_string())?;
        s.serialize_field("two_phase_posted", &self.two_phase_posted.to_string())?;
        s.serialize_field("two_phase_voided", &self.two_phase_voided.to_string())?;
        s.serialize_field("two_phase_expired", &self.two_phase_expired.to_string())?;
        s.serialize_field("total", &self.total().to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_type_and_in_total_as_decimal_strings() {
        let mut counts = EventCounts::default();
        counts.add(EventType::SinglePhase);
        counts.add(EventType::TwoPhaseExpired);
        counts.add(EventType::TwoPhaseExpired);
        assert_eq!(counts.get(EventType::TwoPhaseExpired), 2);
        assert_eq!(counts.get(EventType::TwoPhasePosted), 0);
        assert_eq!(counts.total(), 3);
        let json = serde_json::to_value(counts).expect("serializes");
        assert_eq!(json["single_phase"], "1");
        assert_eq!(json["two_phase_expired"], "2");
        assert_eq!(json["total"], "3");
    }
}
