//! Workspace naming: the rule every store applies to a workspace's slug.

/// The pattern every workspace slug matches, as messages state it.
pub const SLUG_PATTERN: &str = "[a-z0-9][a-z0-9-]{0,62}";

/// Whether `slug` matches [`SLUG_PATTERN`]: 1 to 63 ASCII lower-case letters,
/// digits and hyphens, the first not a hyphen.
pub fn valid_slug(slug: &str) -> bool {
    let b = slug.as_bytes();
    let Some((first, rest)) = b.split_first() else {
        return false;
    };
    (first.is_ascii_lowercase() || first.is_ascii_digit())
        && rest.len() <= 62
        && rest
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        for ok in ["default", "a", "0", "a-b", "9-", "a--b", &"a".repeat(63)] {
            assert!(valid_slug(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "A",
            "aB",
            "a_b",
            "a b",
            " a",
            "a\n",
            "é",
            "aé",
            &"a".repeat(64),
        ] {
            assert!(!valid_slug(bad), "{bad:?}");
        }
    }
}
