//! Background jobs: a request stored when submitted, its state, progress and
//! report.

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting for a runner.
    Queued,
    /// A runner has started it (or was interrupted while on it, or its lease ran
    /// out).
    Running,
    /// Ran to its end; the report says what happened to each record.
    Succeeded,
    /// Could not run (a request-level error, or storage); the error says why.
    Failed,
    /// Cancelled before it started.
    Cancelled,
}

impl JobState {
    /// The number stores keep for the state (1 to 5).
    pub fn code(self) -> u8 {
        match self {
            JobState::Queued => 1,
            JobState::Running => 2,
            JobState::Succeeded => 3,
            JobState::Failed => 4,
            JobState::Cancelled => 5,
        }
    }

    /// The state a stored number stands for; `None` for an unknown number.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => JobState::Queued,
            2 => JobState::Running,
            3 => JobState::Succeeded,
            4 => JobState::Failed,
            5 => JobState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the job has ended (succeeded, failed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its number in the workspace (submission order).
    pub number: u64,
    /// Its id (UUID bytes).
    pub id: [u8; 16],
    /// Its state.
    pub state: JobState,
    /// Records processed so far.
    pub processed: u64,
    /// Records in the request.
    pub total: u64,
    /// Submission time, µs since the Unix epoch.
    pub submitted_at_us: i64,
    /// Last change, µs since the Unix epoch.
    pub updated_at_us: i64,
    /// The report so far as JSON text (empty before the first chunk).
    pub report_json: String,
    /// Why a failed job failed.
    pub error: Option<String>,
    /// The runner holding it, while running, in a store whose runners take
    /// leases (PostgreSQL). The redb store runs its jobs in the one writer
    /// process: it keeps no lease, reads `None` and does not store this.
    pub lease_owner: Option<String>,
    /// Until when that runner holds it, µs since the Unix epoch (as
    /// `lease_owner`: `None` in the redb store).
    pub lease_until_us: Option<i64>,
}

/// What a running job keeps in `job_data` between its chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobDataKind {
    /// Which records the duplicate policy leaves out (one entry, decided when the
    /// job started).
    LeftOut,
    /// The first record that reached each contact (one entry per contact id).
    Reached,
    /// The report of each committed chunk (one entry per chunk number).
    Report,
    /// The job's request as JSON text (one entry), deleted when the job ends.
    Request,
}

impl JobDataKind {
    /// The number stores keep for the kind (1 to 4).
    pub fn code(self) -> u8 {
        match self {
            JobDataKind::LeftOut => 1,
            JobDataKind::Reached => 2,
            JobDataKind::Report => 3,
            JobDataKind::Request => 4,
        }
    }
}

/// One `job_data` entry: the rest of its key after the kind, and its value.
pub type JobDataEntry = (Vec<u8>, Vec<u8>);

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    #[test]
    fn state_codes_round_trip_and_stay_fixed() {
        // Stored files and tables hold these numbers: they never change.
        for (state, code) in ALL.into_iter().zip(1u8..) {
            assert_eq!(state.code(), code);
            assert_eq!(JobState::from_code(code), Some(state));
        }
        assert_eq!(JobState::from_code(0), None);
        assert_eq!(JobState::from_code(6), None);
    }

    #[test]
    fn final_states() {
        let finals: Vec<JobState> = ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(
            finals,
            [JobState::Succeeded, JobState::Failed, JobState::Cancelled]
        );
    }

    #[test]
    fn data_kind_codes_stay_fixed() {
        assert_eq!(JobDataKind::LeftOut.code(), 1);
        assert_eq!(JobDataKind::Reached.code(), 2);
        assert_eq!(JobDataKind::Report.code(), 3);
        assert_eq!(JobDataKind::Request.code(), 4);
    }
}
