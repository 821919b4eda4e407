//! `TwoStepRequirement`: who of a tenant must have a second factor, as its admin sets it
//! (`off`, `admins`, `everyone`).

/// Who of a tenant must have a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TwoStepRequirement {
    /// Each user's own choice.
    #[default]
    Off,
    /// The tenant's admins.
    Admins,
    /// Everyone in the tenant.
    Everyone,
}

impl TwoStepRequirement {
    pub fn as_str(self) -> &'static str {
        match self {
            TwoStepRequirement::Off => "off",
            TwoStepRequirement::Admins => "admins",
            TwoStepRequirement::Everyone => "everyone",
        }
    }

    pub fn parse(s: &str) -> Option<TwoStepRequirement> {
        match s {
            "off" => Some(TwoStepRequirement::Off),
            "admins" => Some(TwoStepRequirement::Admins),
            "everyone" => Some(TwoStepRequirement::Everyone),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requirement_reads_back_as_written() {
        for r in [
            TwoStepRequirement::Off,
            TwoStepRequirement::Admins,
            TwoStepRequirement::Everyone,
        ] {
            assert_eq!(TwoStepRequirement::parse(r.as_str()), Some(r));
        }
        assert_eq!(TwoStepRequirement::parse("Admins"), None);
        assert_eq!(TwoStepRequirement::parse(""), None);
    }
}
