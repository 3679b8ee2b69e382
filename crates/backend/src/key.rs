//! API keys, as stored (never their tokens).

use crate::WorkspaceId;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyRole {
    /// Read: job status, contacts.
    Read,
    /// Write: bulk requests and jobs, and what read allows.
    Write,
    /// Manage: everything.
    Manage,
}

impl KeyRole {
    /// The number stores keep for the role (1 to 3).
    pub fn code(self) -> u8 {
        match self {
            KeyRole::Read => 1,
            KeyRole::Write => 2,
            KeyRole::Manage => 3,
        }
    }

    /// The role a stored number stands for; `None` for an unknown number.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => KeyRole::Read,
            2 => KeyRole::Write,
            3 => KeyRole::Manage,
            _ => return None,
        })
    }
}

/// An API key as stored (never its token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Its id.
    pub id: [u8; 16],
    /// The workspace it belongs to.
    pub ws: WorkspaceId,
    /// Its role.
    pub role: KeyRole,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_codes_round_trip_and_stay_fixed() {
        for (role, code) in [
            (KeyRole::Read, 1),
            (KeyRole::Write, 2),
            (KeyRole::Manage, 3),
        ] {
            assert_eq!(role.code(), code);
            assert_eq!(KeyRole::from_code(code), Some(role));
        }
        assert_eq!(KeyRole::from_code(0), None);
        assert_eq!(KeyRole::from_code(4), None);
    }
}
