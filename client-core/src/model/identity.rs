//! Who and what an assessment is about: the ward unit, and the author of an edit.

use serde::{Deserialize, Serialize};

/// A ward police unit (Công an phường).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    /// Stable id, e.g. "kontum-ngo-may".
    pub id: String,
    /// Display name, e.g. "Công an phường Ngô Mây".
    pub name: String,
    /// The city it belongs to.
    pub city: String,
    /// The province it belongs to.
    pub province: String,
}

/// Who makes an edit: a user (officer or supervisor) on a device.
///
/// Recorded with every change so that history reads "who changed what, when".
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Author {
    /// The user id of the officer or supervisor.
    pub user: String,
    /// The device id (a phone, or the relay's console).
    pub device: String,
}

impl Author {
    /// An author from a user and device id.
    pub fn new(user: impl Into<String>, device: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            device: device.into(),
        }
    }
}

/// What a user may do. The relay's accounts give each user one; a phone learns its own at
/// enrolment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A field officer of a ward: collects evidence for their own ward.
    #[default]
    Officer,
    /// A city or province supervisor: reviews every ward under their unit.
    Supervisor,
    /// Runs the relay: sees every ward.
    Admin,
}

impl Role {
    /// The name stored in databases, sent on the wire and typed on command lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Officer => "officer",
            Role::Supervisor => "supervisor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may approve or return criteria.
    pub fn may_review(self) -> bool {
        self != Role::Officer
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a role name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a role is officer, supervisor or admin")]
pub struct InvalidRole;

impl std::str::FromStr for Role {
    type Err = InvalidRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "officer" => Ok(Role::Officer),
            "supervisor" => Ok(Role::Supervisor),
            "admin" => Ok(Role::Admin),
            _ => Err(InvalidRole),
        }
    }
}
