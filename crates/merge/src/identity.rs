//! Which records of a request are occurrences of one contact, for the duplicate
//! policies `first`, `last` and `reject`.
//!
//! Identity is decided from the database as it was when the request began, never
//! from the request's own effects: each valid record is matched against the
//! snapshot (key or alias, else a single email/phone match when the request matches
//! on them). Every record is labelled with its key; one that reaches an existing
//! contact also with that contact, one that reaches none (or several: an ambiguous
//! match) also with its matched-on email and phone values. Records sharing a label
//! are occurrences of one contact, transitively. Each group keeps one record (the
//! first, or the last under `last`); the others are left out.

use ahash::AHashMap;

use contactdb_policy::{NormalizedRecord, OnDuplicate};

use crate::Stored;

/// What the snapshot tells about one record: its normalized form, the contact its
/// key or alias names, and the contacts its email and phone match (`None` when not
/// looked up).
pub(crate) struct SnapshotMatch<'a> {
    pub(crate) rec: &'a NormalizedRecord,
    pub(crate) by_key: Option<&'a Stored>,
    pub(crate) by_email: Option<&'a [Stored]>,
    pub(crate) by_phone: Option<&'a [Stored]>,
}

/// How the duplicate policy leaves a record out of its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LeftOut {
    /// `first` / `last`: outcome `duplicate` of the kept record at this index.
    Duplicate(u32),
    /// `reject`: failed with `duplicate_in_batch`, naming the kept record.
    Rejected(u32),
}

/// A label two occurrences of one contact share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Label<'a> {
    /// The existing contact (by its committed key) the record reaches.
    Contact(&'a str),
    /// The key of a record that reaches no existing contact.
    Key(&'a str),
    /// Its matched-on email.
    Email(&'a str),
    /// Its matched-on phone.
    Phone(&'a str),
}

/// The labels of one record (at most three), empty for an invalid record.
fn labels<'a>(m: &SnapshotMatch<'a>) -> Vec<Label<'a>> {
    let rec = m.rec;
    let Some(key) = rec.key.as_deref().filter(|_| !rec.is_invalid()) else {
        return Vec::new();
    };
    if let Some(c) = m.by_key {
        return vec![Label::Key(key), Label::Contact(c.contact.key.as_str())];
    }
    let mut reached: Option<&'a str> = None;
    let mut several = false;
    let candidates = m.by_email.into_iter().chain(m.by_phone).flatten();
    for Stored { contact: c, .. } in candidates {
        match reached {
            None => reached = Some(c.key.as_str()),
            Some(k) if k != c.key => several = true,
            Some(_) => {}
        }
    }
    if let (Some(k), false) = (reached, several) {
        return vec![Label::Key(key), Label::Contact(k)];
    }
    let mut out = vec![Label::Key(key)];
    if m.by_email.is_some()
        && let Some(e) = rec.email()
    {
        out.push(Label::Email(e));
    }
    if m.by_phone.is_some()
        && let Some(g) = rec.gsm()
    {
        out.push(Label::Phone(g));
    }
    out
}

/// A disjoint-set forest over record positions.
struct Groups {
    parent: Vec<usize>,
}

impl Groups {
    fn new(n: usize) -> Self {
        Groups {
            parent: (0..n).collect(),
        }
    }

    fn root(&mut self, mut i: usize) -> usize {
        let mut r = i;
        while let Some(&p) = self.parent.get(r)
            && p != r
        {
            r = p;
        }
        // Path compression.
        while let Some(p) = self.parent.get_mut(i)
            && *p != r
        {
            let next = *p;
            *p = r;
            i = next;
        }
        r
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb
            && let Some(p) = self.parent.get_mut(ra.max(rb))
        {
            // The smaller root stays the root: roots are group minima.
            *p = ra.min(rb);
        }
    }
}

/// For each record (in input order), whether `policy` leaves it out, and as the
/// duplicate of which record. Always `None` under `merge`. `index(i)` is the
/// record's index in the request.
pub(crate) fn left_out<'a>(
    policy: OnDuplicate,
    records: impl Iterator<Item = SnapshotMatch<'a>>,
) -> Vec<Option<LeftOut>> {
    let mut index = Vec::new();
    let mut member = Vec::new();
    let mut record_labels = Vec::new();
    for m in records {
        index.push(m.rec.index);
        let ls = labels(&m);
        member.push(!ls.is_empty());
        record_labels.push(ls);
    }
    let n = index.len();
    if policy == OnDuplicate::Merge {
        return vec![None; n];
    }
    let mut groups = Groups::new(n);
    let mut first_with: AHashMap<Label<'a>, usize> = AHashMap::with_capacity(n);
    for (i, ls) in record_labels.into_iter().enumerate() {
        for l in ls {
            match first_with.get(&l) {
                Some(&j) => groups.union(i, j),
                None => {
                    first_with.insert(l, i);
                }
            }
        }
    }
    // The kept record of each group, by its root (the group's first record).
    let mut kept: AHashMap<usize, usize> = AHashMap::new();
    for i in (0..n).filter(|&i| member.get(i).copied().unwrap_or(false)) {
        let r = groups.root(i);
        match policy {
            OnDuplicate::Last => {
                kept.insert(r, i);
            }
            _ => {
                kept.entry(r).or_insert(i);
            }
        }
    }
    (0..n)
        .map(|i| {
            if !member.get(i).copied().unwrap_or(false) {
                return None;
            }
            let k = kept.get(&groups.root(i)).copied()?;
            let k_index = index.get(k).copied()?;
            (k != i).then_some(match policy {
                OnDuplicate::Reject => LeftOut::Rejected(k_index),
                _ => LeftOut::Duplicate(k_index),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_join_transitively_and_roots_are_minima() {
        let mut g = Groups::new(6);
        g.union(4, 2);
        g.union(5, 4);
        g.union(1, 3);
        assert_eq!(g.root(5), 2);
        assert_eq!(g.root(4), 2);
        assert_eq!(g.root(3), 1);
        assert_eq!(g.root(0), 0);
        g.union(3, 5);
        assert_eq!(g.root(2), 1);
        assert_eq!(g.root(5), 1);
    }
}
