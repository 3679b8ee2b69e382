//! The change events a plan's contact writes make: which kinds, in which order.
//! Every store appends these to its feed, so the rule lives here, once.

use contactdb_policy::Contact;

use crate::ContactWrite;

/// What a change event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A contact was inserted.
    Insert,
    /// A contact's columns changed.
    Update,
    /// A contact was renamed (`detail`: the previous key).
    Rekey,
    /// A contact gained an alias (`detail`: the alias).
    Alias,
    /// A contact joined a campaign (`detail`: the campaign).
    Join,
}

impl EventKind {
    /// The number stores keep for the kind (1 to 5).
    pub fn code(self) -> u8 {
        match self {
            EventKind::Insert => 1,
            EventKind::Update => 2,
            EventKind::Rekey => 3,
            EventKind::Alias => 4,
            EventKind::Join => 5,
        }
    }

    /// The kind a stored number stands for; `None` for an unknown number.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            1 => EventKind::Insert,
            2 => EventKind::Update,
            3 => EventKind::Rekey,
            4 => EventKind::Alias,
            5 => EventKind::Join,
            _ => return None,
        })
    }
}

/// An event to append: everything but its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent<'a> {
    /// What happened.
    pub kind: EventKind,
    /// The contact's key after the change.
    pub key: &'a str,
    /// The contact's version after the change.
    pub version: u64,
    /// The previous key, the alias or the campaign.
    pub detail: Option<&'a str>,
}

/// Appends the events of one contact write to `out`, in the order they happened
/// to it: insert; or rekey, new aliases, then update when its columns changed (or
/// when nothing else did).
pub fn write_events<'a>(w: &'a ContactWrite, out: &mut Vec<NewEvent<'a>>) {
    let after: &Contact = &w.after;
    let event = |kind, detail| NewEvent {
        kind,
        key: &after.key,
        version: after.version,
        detail,
    };
    let Some(b) = w.before.as_ref().map(|b| &b.contact) else {
        out.push(event(EventKind::Insert, None));
        return;
    };
    let start = out.len();
    if b.key != after.key {
        out.push(event(EventKind::Rekey, Some(&b.key)));
    }
    for a in after.aliases.iter().filter(|a| !b.aliases.contains(a)) {
        out.push(event(EventKind::Alias, Some(a)));
    }
    if b.fields != after.fields || out.len() == start {
        out.push(event(EventKind::Update, None));
    }
}
