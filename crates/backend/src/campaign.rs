//! Campaigns and their members.

/// A campaign of a workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignInfo {
    /// Its number in the workspace.
    pub number: u32,
    /// Its name, unique in the workspace.
    pub name: String,
    /// Columns every member must have a value for.
    pub required: Vec<String>,
    /// Creation time, µs since the Unix epoch.
    pub created_at_us: i64,
    /// Number of members.
    pub members: u64,
}

/// One member of a campaign, as the pick order lists it (`priority` ascending,
/// then order of joining).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The contact's internal id.
    pub contact_id: u64,
    /// The contact's priority (0 is picked first).
    pub priority: u32,
    /// Order of joining within the campaign.
    pub joined: u64,
}
